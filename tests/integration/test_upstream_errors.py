"""Upstream errors are the gateway's to explain (the official openai SDK against a gateway in
this process, in front of sims and faulty upstreams): an upstream 401/403/404 (the
gateway's own key, URL or model) is a 502 ``upstream_error`` naming the backend and what it
said, falls back to the next backend and marks the refusing one unready (skipped, shown in
/readyz and /metrics) until a probe finds it right; a caller error the upstream found (400
or 422 with ``param`` and ``code``) keeps them and is not retried. Never a 500."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import openai
import pytest

from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim

MSG = [{"role": "user", "content": "hello there"}]
SIM_KEY = "sim-secret-key-42"


def config(flaky: str, lone: str, sim: str, keyed: str, claude: str, store: str) -> str:
    return f"""
store: {store}
limits: {{circuit_failures: 1000, ready_probe_s: 3600}}
backends:
  - {{name: flaky, url: "{flaky}", model: faulty, hosting: self, gpu: {GPU}}}
  - {{name: lone, url: "{lone}", model: faulty, hosting: self, gpu: {GPU}}}
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: misnamed, url: "{sim}", model: no-such-model, hosting: self, gpu: {GPU}}}
  - {{name: keyless, url: "{keyed}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-x, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: fb, backends: [flaky, llama]}}
  - {{alias: solo, backends: [lone]}}
  - {{alias: open, backends: [llama]}}
  - {{alias: wrong, backends: [misnamed]}}
  - {{alias: keyed, backends: [keyless, llama]}}
  - {{alias: claude, backends: [claude]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
"""


class Stack:
    def __init__(self, tmp) -> None:
        self.flaky, self.lone = upstreams.Faults(), upstreams.Faults()
        self._servers = [upstreams.serving(upstreams.faulty_app(self.flaky)),
                         upstreams.serving(upstreams.faulty_app(self.lone)),
                         upstreams.serving(upstreams.anthropic_refusing(
                             401, "authentication_error", "invalid x-api-key"))]
        flaky, lone, claude = (s.__enter__() for s in self._servers)
        self.sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                "--time-scale", "0.001")
        self.keyed = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                  "--time-scale", "0.001", "--api-key-env", "SIM_KEY",
                                  env={"SIM_KEY": SIM_KEY})
        self.gateway = InProcessGateway(config(flaky, lone, self.sim.url, self.keyed.url,
                                               claude, f"sqlite:///{tmp}/l.db"), tmp)
        self.client = openai.OpenAI(base_url=self.gateway.url, api_key=KEYS["app"],
                                    max_retries=0)

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.keyed.stop()
        self.sim.stop()
        for server in self._servers:
            server.__exit__(None, None, None)

    def get(self, path: str) -> tuple[int, str]:
        req = urllib.request.Request(f"{self.gateway.base}{path}",
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def probes(self) -> dict:
        return json.loads(self.get("/readyz")[1])["probes"]

    def until_ready(self, name: str) -> dict:
        """Poll /readyz (each not-ready answer starts a re-probe, at most once a second)
        until ``name`` is no longer unready; its probe."""
        for _ in range(100):
            probe = self.probes()[name]
            if probe["unready"] is None:
                return probe
            time.sleep(0.1)
        raise AssertionError(f"{name} stayed unready: {probe}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("upstream-errors"))
    yield s
    s.stop()


@pytest.mark.parametrize("mode", ["401", "403", "404"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_refused_config_is_a_502_naming_the_backend_never_the_callers(stack, mode, stream):
    stack.lone.mode = mode
    try:
        with pytest.raises(openai.APIStatusError) as err:
            answer = stack.client.chat.completions.create(model="solo", messages=MSG,
                                                          stream=stream)
            list(answer) if stream else None
    finally:
        stack.lone.mode = "ok"
    exc = err.value
    assert exc.status_code == 502  # not AuthenticationError, PermissionDenied or NotFound
    assert not isinstance(exc, openai.AuthenticationError | openai.NotFoundError)
    body = exc.body
    assert body["code"] == "upstream_error" and body["type"] == "server_error"
    said = upstreams.REFUSALS[mode][1]["message"]
    assert f"lone answered {mode}" in body["message"] and said[:20] in body["message"]
    assert ("api_key_env" if mode != "404" else "url and model") in body["message"]
    # the backend is unready now: skipped without being asked, still a 502 that says why
    asked = len(stack.lone.log)
    with pytest.raises(openai.APIStatusError) as again:
        stack.client.chat.completions.create(model="solo", messages=MSG)
    assert again.value.status_code == 502 and len(stack.lone.log) == asked
    assert "unready" in again.value.body["message"]
    assert 'breakeven_gateway_backend_unready{backend="lone"} 1' in stack.get("/metrics")[1]
    probe = stack.until_ready("lone")  # fixed upstream: the re-probe makes it ready again
    assert probe["outcome"] == "ok" and probe["status"] == 200 and probe["latency_ms"] >= 0
    assert 'breakeven_gateway_backend_unready{backend="lone"} 0' in stack.get("/metrics")[1]
    assert stack.client.chat.completions.create(
        model="solo", messages=MSG).choices[0].message.content == "fine answer"


def test_a_refused_config_falls_back_and_the_backend_is_skipped_after(stack):
    stack.flaky.mode = "401"
    try:
        raw = stack.client.chat.completions.with_raw_response.create(model="fb", messages=MSG)
        assert raw.headers["x-breakeven-backend"] == "llama"  # the caller got an answer
        asked = len(stack.flaky.log)
        assert asked == 1
        second = stack.client.chat.completions.with_raw_response.create(model="fb",
                                                                         messages=MSG)
        assert second.headers["x-breakeven-backend"] == "llama"
        assert len(stack.flaky.log) == asked  # skipped: unready, not asked again
        probes = stack.probes()
        assert "flaky answered 401" in probes["flaky"]["unready"]
        assert json.loads(stack.get("/readyz")[1])["backends"]["flaky"] is False
    finally:
        stack.flaky.mode = "ok"
    stack.until_ready("flaky")
    third = stack.client.chat.completions.with_raw_response.create(model="fb", messages=MSG)
    assert third.headers["x-breakeven-backend"] == "flaky"


def test_a_wrong_upstream_model_stays_unready_while_the_engine_lacks_it(stack):
    """The sim's own 404 (model_not_found) for a model the config names wrongly: a 502,
    and the probe keeps it unready because the engine's /models does not list it."""
    with pytest.raises(openai.APIStatusError) as err:
        stack.client.chat.completions.create(model="wrong", messages=MSG)
    assert err.value.status_code == 502
    assert "misnamed answered 404" in err.value.body["message"]
    assert "no-such-model" in err.value.body["message"]
    for _ in range(30):
        probe = stack.probes()["misnamed"]
        if probe.get("error"):
            break
        time.sleep(0.1)
    assert "'no-such-model' is not among" in probe["error"] and probe["status"] == 200
    assert probe["unready"] is not None


def test_a_key_the_engine_refuses_is_found_by_the_probe_before_any_caller(stack):
    probe = stack.probes()["keyless"]
    assert probe["status"] == 401 and "readiness probe" in probe["unready"]
    raw = stack.client.chat.completions.with_raw_response.create(model="keyed", messages=MSG)
    assert raw.headers["x-breakeven-backend"] == "llama"
    assert stack.keyed.server.observed.e2e.n == 0  # the engine that would refuse was never asked


def test_an_anthropic_upstream_refusing_the_key_is_a_502(stack):
    with pytest.raises(openai.APIStatusError) as err:
        stack.client.chat.completions.create(model="claude", messages=MSG)
    assert err.value.status_code == 502
    assert "claude answered 401: invalid x-api-key" in err.value.body["message"]


@pytest.mark.parametrize("mode", ["400-param", "422"])
@pytest.mark.parametrize("stream", [False, True])
def test_caller_errors_keep_param_and_code_and_are_not_retried(stack, mode, stream):
    stack.flaky.mode = mode
    asked = len(stack.flaky.log)
    try:
        with pytest.raises(openai.APIStatusError) as err:
            answer = stack.client.chat.completions.create(model="fb", messages=MSG,
                                                          stream=stream)
            list(answer) if stream else None
    finally:
        stack.flaky.mode = "ok"
    status, said = upstreams.REFUSALS[mode]
    assert err.value.status_code == status
    assert err.value.body == said  # message, type, param, code as the upstream gave them
    assert len(stack.flaky.log) == asked + 1  # asked once, never the fallback
    assert stack.probes()["flaky"]["unready"] is None  # the caller's fault, not the config's


def test_the_engines_context_error_keeps_its_param(stack):
    with pytest.raises(openai.BadRequestError) as err:
        stack.client.chat.completions.create(model="open", messages=MSG, max_tokens=10**6)
    assert err.value.body["param"] == "max_tokens"
    assert "maximum context length" in err.value.body["message"]


def test_readyz_reports_each_backends_last_probe(stack):
    with pytest.raises(openai.APIStatusError):  # misnamed is unready from here on
        stack.client.chat.completions.create(model="wrong", messages=MSG)
    status, text = stack.get("/readyz")
    ready = json.loads(text)
    assert status == 503 and not ready["routes"]["wrong"]  # its one backend is unready
    probes = ready["probes"]
    assert set(probes) == {"flaky", "lone", "llama", "misnamed", "keyless", "claude"}
    llama = probes["llama"]
    assert llama["outcome"] == "ok" and llama["status"] == 200
    assert llama["at"] > time.time() - 3600 and llama["latency_ms"] >= 0
    assert probes["claude"]["outcome"] in ("not_probed", "error")  # hosted: only if unready


# litellm's own pydantic models warn as it builds them: not the gateway's concern
@pytest.mark.filterwarnings("ignore:.* the `ReadOnly` qualifier:UserWarning")
def test_litellm_sees_the_gateways_502_not_an_authentication_error(stack, monkeypatch):
    """litellm's router treats an AuthenticationError as the caller's (no fallback, no
    retry): an upstream's refused key must reach it as the gateway's 502."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetched at import
    litellm = pytest.importorskip("litellm")
    stack.lone.mode = "401"
    try:
        with pytest.raises(litellm.exceptions.BadGatewayError) as err:
            litellm.completion(model="openai/solo", messages=MSG, api_base=stack.gateway.url,
                               api_key=KEYS["app"], num_retries=0, max_retries=0)
    finally:
        stack.lone.mode = "ok"
    assert not isinstance(err.value, litellm.AuthenticationError | litellm.NotFoundError)
    assert err.value.status_code == 502 and "lone answered 401" in str(err.value)
    stack.until_ready("lone")
    with pytest.raises(litellm.BadRequestError) as bad:  # a caller error stays the caller's
        stack.flaky.mode = "400-param"
        try:
            litellm.completion(model="openai/fb", messages=MSG, api_base=stack.gateway.url,
                               api_key=KEYS["app"], num_retries=0, max_retries=0)
        finally:
            stack.flaky.mode = "ok"
    assert "maximum context length" in str(bad.value)


def test_a_backend_sends_its_key_the_way_its_config_says(tmp_path):
    """An Anthropic-wire backend sends ``x-api-key`` unless ``key_header: bearer`` (as
    Bedrock's API keys are): then ``Authorization: Bearer`` and no x-api-key at all."""
    seen: list[dict] = []
    with upstreams.serving(upstreams.anthropic_app(headers=seen)) as claude:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/l.db
backends:
  - {{name: plain, kind: anthropic, url: "{claude}", model: m, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}, api_key_env: UP_KEY}}
  - {{name: bedrockish, kind: anthropic, url: "{claude}", model: m, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}, api_key_env: UP_KEY,
      key_header: bearer}}
routes:
  - {{alias: a, backends: [plain]}}
  - {{alias: b, backends: [bedrockish]}}
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
""", tmp_path, env={"UP_KEY": "upstream-secret-1"})
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            for alias in ("a", "b"):
                client.chat.completions.create(model=alias, messages=MSG)
        finally:
            gw.stop()
    plain, bearer = ({k.lower(): v for k, v in h.items()} for h in seen)
    assert plain["x-api-key"] == "upstream-secret-1" and "authorization" not in plain
    assert bearer["authorization"] == "Bearer upstream-secret-1" and "x-api-key" not in bearer
