"""Right statuses at the HTTP edge: a ``response_format`` that is not an object on a
cascade route is a 400 naming it, and ``/admin/report`` refuses a ``since`` beyond
``limits.report_max_days`` (a huge one included) with a 400 instead of a 500 or gigabytes."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support import upstreams
from tests.support.limits import KEYS, gateway, http, priced_upstream, sha


def config(a: str, b: str) -> str:
    return f"""
store: {{store}}
backends:
  - {{name: a, url: "{a}", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 1000}}}}
  - {{name: b, url: "{b}", model: m, hosting: hosted,
      price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - {{alias: chat, backends: [a, b], cascade: {{first: [a], then: [b]}}}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
"""


def test_a_string_response_format_on_a_cascade_route_is_a_400(tmp_path):
    a_app, _ = priced_upstream()
    b_app, _ = priced_upstream()
    with upstreams.serving(a_app) as a, upstreams.serving(b_app) as b, \
            gateway(config(a, b), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            with pytest.raises(openai.BadRequestError) as err:
                client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "hi"}],
                    extra_body={"response_format": "json_object"})
        finally:
            client.close()
    assert err.value.body["param"] == "response_format"


@pytest.mark.parametrize("since", ["9" * 400 + "d", "100000000d", "0001-01-01", "401d"])
def test_a_since_beyond_the_bound_is_a_400(tmp_path, since):
    a_app, _ = priced_upstream()
    with upstreams.serving(a_app) as a, gateway(config(a, a), tmp_path) as gw:
        status, _, text = http(gw.base, "GET", f"/admin/report?since={since}",
                               {"Authorization": f"Bearer {KEYS['admin']}"})
        assert status == 400, text[:200]
        error = json.loads(text)["error"]
        assert error["param"] == "since" and "report_max_days" in error["message"]
        ok, _, _ = http(gw.base, "GET", "/admin/report?since=30d",
                        {"Authorization": f"Bearer {KEYS['admin']}"})
        assert ok == 200
