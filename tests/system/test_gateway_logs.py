"""A gateway process's own stderr never shows an upstream's API key, even when the upstream
echoes it back in an error (as providers do on a bad key). The in-process tests check the
gateway's log records (integration/test_hostile.py, integration/test_gateway.py); this is
the process an operator runs, writing where an operator reads."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.support import upstreams
from tests.support.configs import KEYS, sha
from tests.support.servers import GatewayProcess

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"


def test_an_echoed_upstream_key_is_not_in_the_gateway_stderr(tmp_path):
    faults = upstreams.Faults()
    faults.mode = "401-echo"
    with upstreams.serving(upstreams.faulty_app(faults)) as echo:
        gateway = GatewayProcess(f"""
store: sqlite:///{tmp_path}/l.db
backends:
  - {{name: echo, url: "{echo}", model: faulty, hosting: hosted, api_key_env: UPSTREAM_KEY,
      price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
routes: [{{alias: leaky, backends: [echo]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
""", tmp_path, env={"UPSTREAM_KEY": UPSTREAM_KEY})
        try:
            body = json.dumps({"model": "leaky", "messages": [{"role": "user",
                                                              "content": "x"}]}).encode()
            req = urllib.request.Request(f"{gateway.url}/chat/completions", data=body,
                                         headers={"Authorization": f"Bearer {KEYS['app']}",
                                                  "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=30).close()
                raise AssertionError("the echoing upstream's 401 was not reported")
            except urllib.error.HTTPError as err:
                with err:
                    status, raw = err.code, err.read().decode()
            assert faults.log, "the echoing upstream was not reached"
        finally:
            gateway.stop()
    # the gateway's key was refused: a 502 naming the backend (never the caller's 401); the
    # warning that marks it unready quotes the upstream, redacted
    assert status == 502 and "[redacted]" in raw and "echo answered 401" in raw
    assert "marked unready" in gateway.stderr
    assert UPSTREAM_KEY not in gateway.stderr and "SECRET-0123" not in gateway.stderr
