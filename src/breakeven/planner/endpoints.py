"""Where each hosted provider's API is reached, globally and where data must stay in a
region: the endpoints ``plan --emit-gateway`` writes. Pure data, with its sources.

Each row says the gateway backend ``kind`` that speaks the endpoint's wire format, the
base URL (the gateway appends ``/chat/completions`` or ``/messages``), the environment
variable the key is read from, how the provider names the model there, and the ``source``
and ``as_of`` of the facts. ``CHANGE-ME`` parts of a URL are the user's own (a Google
Cloud project). A provider with no regional row cannot promise residency: the emitted
backend then says the row's own region and the routes' ``regions`` keep it out.

Checked 2026-12-01 against the providers' documentation (the ``source`` of each row);
not covered: Azure OpenAI (no catalog row sells through Azure, so no data-zone
deployment URL is emitted; it would be the resource's ``https://{resource}.openai.azure
.com/openai/v1`` with a DataZoneStandard deployment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

__all__ = ["GLOBAL", "REGIONAL", "Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    kind: str  # the gateway backend kind: "openai" or "anthropic"
    url: str
    key_env: str
    source: str
    as_of: date
    model_format: str = "{model}"  # how the endpoint names the catalog's model
    models: dict[str, str] = field(default_factory=dict)  # exact ids, where they differ
    note: str = ""  # what the user must know before it works
    key_header: str | None = None  # how the key is sent, where not the kind's own way

    def model(self, name: str) -> str:
        return self.models.get(name) or self.model_format.format(model=name)


_OPENAI_RESIDENCY = ("developers.openai.com/api/docs/guides/data-residency (regional "
                     "domain prefixes us./eu.api.openai.com on a data-residency project; "
                     "10% uplift for models released from 2026-03-05); openai-node "
                     "src/internal/data-residency.ts lists the same base URLs")
_VERTEX = ("cloud.google.com/vertex-ai/generative-ai/docs/migrate/openai/auth-and-credentials "
           "(Gemini through the OpenAI library: endpoint id 'openapi', models named "
           "'google/<model>', an OAuth access token as the key) and "
           "docs.cloud.google.com/vertex-ai/docs/generative-ai/learn/locations-genai "
           "(regional endpoints {region}-aiplatform.googleapis.com; the global endpoint "
           "gives no control over where a request is processed)")
_VERTEX_NOTE = ("GOOGLE_VERTEX_TOKEN is an OAuth access token ('gcloud auth "
                "print-access-token'): it lasts an hour, so refresh it")
_BEDROCK = ("docs.aws.amazon.com/bedrock/latest/userguide/inference-messages-api.html "
            "(Claude through the Anthropic Messages API on the recommended bedrock-runtime "
            "endpoint, base URL bedrock-runtime.{region}.amazonaws.com/anthropic, in every "
            "Region with Claude; SigV4 or a Bedrock API key) and .../endpoints.html; "
            "bedrock-runtime's OpenAI-compatible Chat Completions serves OpenAI models only "
            "(.../inference-chat-completions.html); model ids from the Bedrock model cards "
            "(Haiku 4.5: anthropic.claude-haiku-4-5-20251001-v1:0, geographic id eu.<id>) and "
            "platform.claude.com/docs/en/build-with-claude/claude-on-amazon-bedrock (Sonnet "
            "4.5: anthropic.claude-sonnet-4-5-20250929-v1:0, offered in the EU)")

# (provider, region) -> the endpoint where the provider keeps the data in that region
REGIONAL: dict[tuple[str, str], Endpoint] = {
    ("openai", "eu"): Endpoint("openai", "https://eu.api.openai.com/v1", "OPENAI_API_KEY",
                               _OPENAI_RESIDENCY, date(2026, 12, 1),
                               note="the key must belong to a project created with EU "
                                    "data residency"),
    ("openai", "us"): Endpoint("openai", "https://us.api.openai.com/v1", "OPENAI_API_KEY",
                               _OPENAI_RESIDENCY, date(2026, 12, 1),
                               note="the key must belong to a project created with US "
                                    "data residency"),
    ("google", "eu"): Endpoint(
        "openai", "https://europe-west4-aiplatform.googleapis.com/v1/projects/"
        "CHANGE-ME-PROJECT/locations/europe-west4/endpoints/openapi", "GOOGLE_VERTEX_TOKEN",
        _VERTEX, date(2026, 12, 1), model_format="google/{model}", note=_VERTEX_NOTE),
    ("google", "us"): Endpoint(
        "openai", "https://us-central1-aiplatform.googleapis.com/v1/projects/"
        "CHANGE-ME-PROJECT/locations/us-central1/endpoints/openapi", "GOOGLE_VERTEX_TOKEN",
        _VERTEX, date(2026, 12, 1), model_format="google/{model}", note=_VERTEX_NOTE),
    ("aws-bedrock", "eu"): Endpoint(
        "anthropic", "https://bedrock-runtime.eu-central-1.amazonaws.com/anthropic/v1",
        "AWS_BEARER_TOKEN_BEDROCK", _BEDROCK, date(2026, 12, 1),
        models={"claude-sonnet-4-5": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-haiku-4-5": "eu.anthropic.claude-haiku-4-5-20251001-v1:0"},
        key_header="bearer",  # a Bedrock API key is a bearer token (the page above)
        note="a Bedrock API key (sent as a bearer token); check that the model id is one "
             "your account can invoke ('aws bedrock list-inference-profiles')"),
}

# the other providers' base URLs were written with the first emitted gateway (2026-12-01)
# and not re-checked in the review of the regional ones (OpenAI's global one was)
_CARRIED = "the provider's documented OpenAI-compatible base URL (not re-checked)"
_PUBLIC = date(2026, 12, 1)
GLOBAL: dict[str, Endpoint] = {
    "anthropic": Endpoint("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY",
                          _CARRIED.replace("OpenAI-compatible", "Messages API"), _PUBLIC),
    "openai": Endpoint("openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
                       _OPENAI_RESIDENCY, _PUBLIC),
    "google": Endpoint("openai", "https://generativelanguage.googleapis.com/v1beta/openai",
                       "GEMINI_API_KEY", _CARRIED + "; the Gemini Developer API processes "
                       "requests globally", _PUBLIC),
    "together": Endpoint("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
                         _CARRIED, _PUBLIC),
    "fireworks": Endpoint("openai", "https://api.fireworks.ai/inference/v1",
                          "FIREWORKS_API_KEY", _CARRIED, _PUBLIC),
    "groq": Endpoint("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
                     _CARRIED, _PUBLIC),
    "deepseek": Endpoint("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
                         _CARRIED, _PUBLIC),
    "deepinfra": Endpoint("openai", "https://api.deepinfra.com/v1/openai",
                          "DEEPINFRA_API_KEY", _CARRIED, _PUBLIC),
}
