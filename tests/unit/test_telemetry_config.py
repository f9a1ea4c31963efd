"""The ``telemetry:`` section: off by default, an endpoint that is an http(s) URL, signal
URLs built as the OTLP exporter specification says, header values never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.telemetry_config import Telemetry

BASE = {"backends": [{"name": "b", "url": "http://127.0.0.1:9/v1", "model": "m",
                      "hosting": "self", "gpu": {"gpu": "a10g", "usd_per_gpu_hour": 1,
                                                 "capacity_tokens_per_s": 1000}}],
        "routes": [{"alias": "r", "backends": ["b"]}]}


def test_off_unless_an_endpoint_is_set():
    cfg = GatewayConfig.model_validate(BASE)
    assert not cfg.telemetry.enabled and cfg.telemetry.describe() == {"enabled": False}
    assert cfg.telemetry.problems({}) == []


def test_signal_urls_hang_off_the_base_endpoint():
    t = Telemetry(otlp_endpoint="https://otel.example.net:4318/")
    assert t.signal_url("traces") == "https://otel.example.net:4318/v1/traces"
    assert t.signal_url("metrics") == "https://otel.example.net:4318/v1/metrics"


@pytest.mark.parametrize("endpoint", ["localhost:4318", "ftp://h:21", "http://", "http://h:x",
                                      "http://h:4318/?a=1"])
def test_a_bad_endpoint_is_refused_naming_the_field(endpoint):
    with pytest.raises(ValidationError) as err:
        GatewayConfig.model_validate({**BASE, "telemetry": {"otlp_endpoint": endpoint}})
    assert err.value.errors()[0]["loc"] == ("telemetry", "otlp_endpoint")


@pytest.mark.parametrize("field", [{"sample_ratio": 1.5}, {"export_interval_s": 0},
                                   {"max_queue": 0}, {"endpoint": "http://h:4318"}])
def test_out_of_range_or_unknown_fields_are_refused(field):
    with pytest.raises(ValidationError):
        Telemetry.model_validate({"otlp_endpoint": "http://h:4318", **field})


def test_header_values_come_from_the_environment_and_are_never_shown():
    t = Telemetry(otlp_endpoint="http://h:4318", headers={"x-team": "blue"},
                  headers_env={"x-api-key": "OTEL_KEY"})
    assert t.export_headers({"OTEL_KEY": "s3cret"}) == {"x-team": "blue", "x-api-key": "s3cret"}
    assert t.problems({}) == ["telemetry.headers_env.x-api-key: environment variable OTEL_KEY "
                              "is not set"]
    assert t.problems({"OTEL_KEY": "s3cret"}) == []
    shown = t.describe()
    assert shown["headers"] == ["x-api-key", "x-team"]
    assert "blue" not in str(shown) and "OTEL_KEY" not in str(shown)
