"""Keys the gateway (in this process) must refuse, in every malformed shape: missing, empty,
another scheme, unknown, revoked; always a 401 in OpenAI's error shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.configs import one_backend, sha
from tests.support.servers import InProcessGateway


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wrong",
                                    "bearer k-app-revoked"])
def test_bad_keys_are_refused(stack_for_auth, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    req = urllib.request.Request(f"{stack_for_auth.base}/v1/chat/completions",
                                 data=b'{"model": "chat", "messages": []}', headers=headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    body = json.loads(err.value.read())
    assert body["error"]["type"] == "authentication_error"


@pytest.fixture(scope="module")
def stack_for_auth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    text = one_backend("http://127.0.0.1:9/v1", f"sqlite:///{tmp}/l.db").replace(
        "keys: [", f"keys: [{{name: old, sha256: {sha('k-app-revoked')}, revoked: true}}, ")
    gateway = InProcessGateway(text, tmp)
    yield gateway
    gateway.stop()
