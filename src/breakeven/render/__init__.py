"""Renderers: plain data (JSON-ready dicts), terminal tables, self-contained HTML."""
