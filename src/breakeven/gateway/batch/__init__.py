"""OpenAI's Batch API on the self-hosted backends: files (``files``), the HTTP handlers
(``api``), the scheduler that fills idle capacity (``scheduler``) and its pure admission
rule (``admission``)."""
