"""``gateway check`` shows the telemetry a config sets up, refuses a bad collector URL in
one line naming the file, field and value, and reports a header variable that is not set;
header values are never printed."""

from __future__ import annotations

import json

from click.testing import CliRunner

from breakeven.cli.gateway_cmd import command as gateway_command
from tests.support.configs import rate_limited


def _check(tmp_path, telemetry: str, *args: str, env: dict | None = None):
    path = tmp_path / "gw.yaml"
    path.write_text(rate_limited("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db")
                    + f"telemetry: {telemetry}\n")
    return path, CliRunner().invoke(gateway_command, ["check", "--config", str(path), *args],
                                    env=env or {})


def test_gateway_check_shows_telemetry(tmp_path):
    _, out = _check(tmp_path, "{otlp_endpoint: 'http://127.0.0.1:4318/', sample_ratio: 0.25, "
                    "headers: {x-team: blue}, headers_env: {x-api-key: OTEL_KEY}}",
                    env={"OTEL_KEY": "s3cret"})
    assert out.exit_code == 0, out.output
    assert ("telemetry: OTLP/HTTP to http://127.0.0.1:4318/v1/traces and "
            "http://127.0.0.1:4318/v1/metrics as 'breakeven-gateway', every 5 s, 25% of "
            "traces, headers x-api-key, x-team") in out.output
    assert "blue" not in out.output and "s3cret" not in out.output
    _, out = _check(tmp_path, "{}", "--json")
    assert out.exit_code == 0 and json.loads(out.output)["telemetry"] == {"enabled": False}
    _, out = _check(tmp_path, "{}")
    assert "telemetry: off" in out.output


def test_a_bad_collector_url_is_one_line_naming_file_field_and_value(tmp_path, run_cli):
    path = tmp_path / "gw.yaml"
    path.write_text(rate_limited("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db")
                    + "telemetry: {otlp_endpoint: 'localhost:4318'}\n")
    out = run_cli("gateway", "check", "--config", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"breakeven: error: {path}: telemetry.otlp_endpoint: not the http(s) URL of an "
        "OTLP/HTTP collector (e.g. http://127.0.0.1:4318) (got 'localhost:4318')")


def test_a_header_variable_not_set_is_a_problem(tmp_path):
    _, out = _check(tmp_path, "{otlp_endpoint: 'http://127.0.0.1:4318', "
                    "headers_env: {x-api-key: OTEL_KEY_NOT_SET}}", "--json")
    assert out.exit_code == 2
    assert json.loads(out.output)["problems"] == [
        "telemetry.headers_env.x-api-key: environment variable OTEL_KEY_NOT_SET is not set"]
