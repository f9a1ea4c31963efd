"""The gateway's OpenAPI document (``GET /openapi.json``). Pure.

It describes what the gateway accepts, in the OpenAI wire format it speaks: request bodies
with the fields the gateway itself reads (anything else is passed to the backend as
OpenAI's API does), Anthropic's Messages API, the Batch API, and the operational and admin
endpoints. The
schemathesis suite (tests/test_hostile.py) generates requests from it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["document"]

_ERROR = {"description": "an OpenAI-style error", "content": {"application/json": {
    "schema": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}}}}
_OK = {"description": "success", "content": {"application/json": {"schema": {
    "type": "object"}}}}
_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"type": "string", "enum": ["system", "user", "assistant"]},
    "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {
        "type": "object", "required": ["type", "text"], "properties": {
            "type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}}}]}}}
_SAMPLING = {
    "max_tokens": {"type": "integer"}, "temperature": {"type": "number"},
    "top_p": {"type": "number"}, "seed": {"type": "integer"}, "stream": {"type": "boolean"},
    "n": {"type": "integer"}, "stop": {"oneOf": [{"type": "string"}, {
        "type": "array", "items": {"type": "string"}}]},
    "logprobs": {"type": "boolean"}, "top_logprobs": {"type": "integer"},
}


_BLOCK = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": ["text", "image", "tool_use", "tool_result"]},
    "text": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"},
    "input": {"type": "object"}, "tool_use_id": {"type": "string"},
    "content": {"type": "string"}}}
_ANTHROPIC = {
    "messages": {"type": "array", "items": {
        "type": "object", "required": ["role", "content"], "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]}}}},
    "max_tokens": {"type": "integer"}, "system": {"oneOf": [{"type": "string"}, {
        "type": "array", "items": _BLOCK}]},
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "temperature": {"type": "number"}, "top_p": {"type": "number"},
    "top_k": {"type": "integer"}, "stream": {"type": "boolean"},
    "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
    "tools": {"type": "array", "items": {"type": "object", "required": ["name"],
                                         "properties": {
                                             "name": {"type": "string"},
                                             "description": {"type": "string"},
                                             "input_schema": {"type": "object"}}}},
    "tool_choice": {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": ["auto", "any", "tool", "none"]},
        "name": {"type": "string"}}},
}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _op(summary: str, body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        "200": _OK, "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR,
        "413": _ERROR, "429": _ERROR, "502": _ERROR, "503": _ERROR, "504": _ERROR}}
    if body is not None:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _responses(model: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/responses``: the fields the gateway reads (responses_wire)."""
    item = {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["message", "function_call",
                                            "function_call_output"]},
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
        "content": {"type": "string"}, "call_id": {"type": "string"},
        "name": {"type": "string"}, "arguments": {"type": "string"},
        "output": {"type": "string"}}}
    return {"type": "object", "required": ["model", "input"], "properties": {
        "model": model, "input": {"oneOf": [{"type": "string"}, {
            "type": "array", "items": item}]}, "instructions": {"type": "string"},
        "max_output_tokens": {"type": "integer"}, "temperature": {"type": "number"},
        "top_p": {"type": "number"}, "store": {"type": "boolean"},
        "stream": {"type": "boolean"}, "previous_response_id": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "tools": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string"}, "name": {"type": "string"}}}}}}


def document(aliases: list[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a gateway whose routes are ``aliases``."""
    model = {"type": "string", "enum": aliases or ["model"]}
    chat = {"type": "object", "required": ["model", "messages"], "properties": {
        "model": model, "messages": {"type": "array", "items": _MESSAGE}, **_SAMPLING}}
    completion = {"type": "object", "required": ["model", "prompt"], "properties": {
        "model": model, "prompt": {"oneOf": [{"type": "string"}, {
            "type": "array", "items": {"type": "string"}}]}, **_SAMPLING}}
    embedding = {"type": "object", "required": ["model", "input"], "properties": {
        "model": model, "input": {"oneOf": [{"type": "string"}, {
            "type": "array", "items": {"type": "string"}}]}}}
    batch = {"type": "object", "required": ["input_file_id", "endpoint", "completion_window"],
             "properties": {"input_file_id": {"type": "string"},
                            "endpoint": {"type": "string", "enum": [
                                "/v1/chat/completions", "/v1/embeddings", "/v1/completions"]},
                            "completion_window": {"type": "string"},
                            "metadata": {"type": "object", "additionalProperties": {
                                "type": "string"}}}}
    anthropic = {"type": "object", "required": ["model", "messages", "max_tokens"],
                 "properties": {"model": model, **_ANTHROPIC}}
    count = {"type": "object", "required": ["model", "messages"],
             "properties": {"model": model, "messages": _ANTHROPIC["messages"]}}
    upload = {"type": "object", "required": ["file", "purpose"], "properties": {
        "file": {"type": "string", "format": "binary"}, "purpose": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "breakeven gateway", "version": "1"},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "api-key": {"type": "apiKey", "in": "header", "name": "api-key"}}},
        "security": [{"bearer": []}, {"x-api-key": []}, {"api-key": []}],
        "paths": {
            "/v1/chat/completions": {"post": _op("chat completion", _body(chat))},
            "/v1/completions": {"post": _op("text completion", _body(completion))},
            "/v1/embeddings": {"post": _op("embeddings", _body(embedding))},
            "/v1/responses": {"post": _op("create a response (Responses API)",
                                          _body(_responses(model)))},
            "/v1/responses/{response_id}": {
                "get": _op("a stored response", params=[_path_param("response_id")]),
                "delete": _op("delete a stored response",
                              params=[_path_param("response_id")])},
            "/v1/messages": {"post": _op("Anthropic Messages API", _body(anthropic))},
            "/v1/messages/count_tokens": {"post": _op("count a message's input tokens",
                                                      _body(count))},
            "/v1/models": {"get": _op("routes this key may use")},
            "/v1/models/{model}": {"get": _op("one route this key may use",
                                              params=[_path_param("model")])},
            "/v1/files": {"post": _op("upload a batch input file",
                                      _body(upload, "multipart/form-data")),
                          "get": _op("list files", params=[
                              _query("limit", {"type": "integer"}),
                              _query("after", {"type": "string"}),
                              _query("order", {"type": "string", "enum": ["asc", "desc"]}),
                              _query("purpose", {"type": "string"})])},
            "/v1/files/{file_id}": {"get": _op("a file", params=[_path_param("file_id")]),
                                    "delete": _op("delete a file",
                                                  params=[_path_param("file_id")])},
            "/v1/files/{file_id}/content": {"get": _op(
                "a file's content", params=[_path_param("file_id")])},
            "/v1/batches": {"post": _op("create a batch", _body(batch)),
                            "get": _op("list batches", params=[
                                _query("limit", {"type": "integer"}),
                                _query("after", {"type": "string"})])},
            "/v1/batches/{batch_id}": {"get": _op("a batch",
                                                  params=[_path_param("batch_id")])},
            "/v1/batches/{batch_id}/cancel": {"post": _op(
                "cancel a batch", params=[_path_param("batch_id")])},
            "/healthz": {"get": _op("process up")},
            "/metrics": {"get": _op("Prometheus metrics")},
            "/admin/ledger": {"get": _op("recent ledger records (admin)", params=[
                _query("limit", {"type": "integer"})])},
            "/admin/report": {"get": _op("the report (admin)", params=[
                _query("since", {"type": "string"})])},
        },
    }
