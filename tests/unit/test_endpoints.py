"""The hosted endpoints ``plan --emit-gateway`` writes: every row cited and dated; the
regional endpoint (and the model name it expects) where residency needs one; without
residency, the global endpoint and no regional claim."""

from __future__ import annotations

import pytest

from breakeven.gateway.config import Backend
from breakeven.planner.emit_gateway import endpoint_notes, hosted_backend
from breakeven.planner.endpoints import GLOBAL, REGIONAL


def test_every_endpoint_has_a_source_a_date_and_a_kind_the_gateway_speaks():
    for ep in [*REGIONAL.values(), *GLOBAL.values()]:
        assert ep.source and ep.as_of.year >= 2026
        assert ep.kind in ("openai", "anthropic") and ep.url.startswith("https://")


@pytest.mark.parametrize(("row", "residency", "region", "url", "model", "kind"), [
    ("gemini-2.5-flash", ("eu",), "eu",
     "https://europe-west4-aiplatform.googleapis.com/v1/projects/CHANGE-ME-PROJECT/"
     "locations/europe-west4/endpoints/openapi", "google/gemini-2.5-flash", "openai"),
    ("gemini-2.5-flash", ("us",), "us",
     "https://us-central1-aiplatform.googleapis.com/v1/projects/CHANGE-ME-PROJECT/"
     "locations/us-central1/endpoints/openapi", "google/gemini-2.5-flash", "openai"),
    ("gemini-2.5-flash", (), "global",
     "https://generativelanguage.googleapis.com/v1beta/openai", "gemini-2.5-flash", "openai"),
    ("gpt-5.4-eu", ("eu",), "eu", "https://eu.api.openai.com/v1", "gpt-5.4", "openai"),
    ("gpt-4o", ("us",), "us", "https://us.api.openai.com/v1", "gpt-4o", "openai"),
    ("gpt-4o", (), "global", "https://api.openai.com/v1", "gpt-4o", "openai"),
    ("claude-sonnet-4-5-bedrock-eu", ("eu",), "eu",
     "https://bedrock-runtime.eu-central-1.amazonaws.com/anthropic/v1",
     "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic"),
])
def test_the_emitted_backend_for_a_row_and_a_residency(catalog, row, residency, region, url,
                                                       model, kind):
    backend = hosted_backend(catalog.hosted_model(row), residency)
    assert (backend["region"], backend["url"], backend["model"], backend["kind"]) == (
        region, url, model, kind)
    Backend.model_validate(backend)  # the gateway loads it as written


def test_a_bedrock_key_is_sent_as_a_bearer_token_and_the_others_their_kinds_way(catalog):
    bedrock = hosted_backend(catalog.hosted_model("claude-sonnet-4-5-bedrock-eu"), ("eu",))
    openai_eu = hosted_backend(catalog.hosted_model("gpt-5.4-eu"), ("eu",))
    assert Backend.model_validate(bedrock).key_header == "bearer"
    assert Backend.model_validate(openai_eu).key_header is None  # Bearer, as OpenAI's kind


def test_the_emitted_file_tells_what_each_regional_endpoint_needs(catalog):
    config = {"backends": [hosted_backend(catalog.hosted_model("gemini-2.5-flash"), ("eu",)),
                           hosted_backend(catalog.hosted_model("gpt-4o"), ())]}
    (note,) = endpoint_notes(config)
    assert note.startswith("gemini-2.5-flash: GOOGLE_VERTEX_TOKEN is an OAuth access token")
    assert "source: cloud.google.com/vertex-ai" in note and "as of 2026-12-01" in note
