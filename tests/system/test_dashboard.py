"""The gateway's /dashboard in a real headless Chromium (Debian's chromium and chromedriver,
driven by Selenium) against a gateway with sim backends in this process: it asks for the
admin key, shows the figures /admin/report gives for the same store, refuses other keys,
loads nothing from outside, and updates after traffic. (The endpoint on its own:
integration/test_report.py.)"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from tests.support.configs import KEYS
from tests.support.ledgers import Traffic

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser(tmp_path, monkeypatch):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are not installed (.ci/run installs them)")
        pytest.skip("chromium and chromedriver are not installed here")
    if "SE_OFFLINE" not in os.environ:  # Selenium must not look for drivers online
        monkeypatch.setenv("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-dev-shm-usage",
                "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=options)
    b.set_page_load_timeout(30)
    yield b
    b.quit()


@pytest.fixture
def traffic(tmp_path):
    t = Traffic(tmp_path, f"sqlite:///{tmp_path}/ledger.db")
    yield t
    t.stop()


def _report(base: str, key: str = KEYS["admin"]) -> dict:
    req = urllib.request.Request(f"{base}/admin/report?since=7d",
                                 headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _figure(browser, name: str) -> str:
    """A figure's text, read in one script call: the page redraws itself as the ledger
    grows, and an element found before a redraw and read after it is stale."""
    return str(browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        f'[data-figure="{name}"]'))


def _money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def _log_in(browser, key: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "key")
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()


def test_dashboard_shows_the_report_and_updates(traffic, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    traffic.send(n_chat=6, n_hard=4, n_pii=2)
    base = traffic.gateway.base
    browser.get(f"{base}/dashboard")
    from selenium.common.exceptions import StaleElementReferenceException

    # the page redraws as the ledger grows: an element read mid-redraw is tried again
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))

    # a key that is not an admin's is refused, with the gateway's own message
    _log_in(browser, KEYS["app"])
    wait.until(lambda b: "admin key required" in b.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "login").is_displayed()

    _log_in(browser, KEYS["admin"])
    wait.until(lambda b: _figure(b, "volume.requests") not in ("", "-"))
    data = _report(base)
    assert _figure(browser, "volume.requests") == f"{data['volume']['requests']:,}"
    assert _figure(browser, "volume.errors") == f"{data['volume']['errors']:,}"
    assert _money(_figure(browser, "cost.monthly.self_usd")) == pytest.approx(
        data["cost"]["monthly"]["self_usd"], abs=0.01)
    # per-month figures extrapolate a window seconds long that grows between two reads:
    # compared with the report the page drew (window.report), and that with the ledger's
    shown = browser.execute_script("return window.report")
    assert shown["volume"] == data["volume"] | {"by_hour": shown["volume"]["by_hour"],
                                                 "by_day": shown["volume"]["by_day"]}
    for name in ("cost.monthly.hosted_usd", "cost.monthly.total_usd",
                 "counterfactuals.all_hosted.monthly_usd"):
        value = shown
        for part in name.split("."):
            value = value[part]
        assert _money(_figure(browser, name)) == pytest.approx(value, abs=0.01)
    assert _figure(browser, "utilisation.mean") == f"{100 * shown['utilisation']['mean']:.1f}%"
    assert browser.execute_script(
        "return document.getElementById('verdict').dataset.verdict;") == (
        data["verdict"]["verdict"])
    rows = dict(browser.execute_script(
        "return Array.from(document.querySelectorAll('#routes tr[data-route]'))"
        ".map(r => [r.dataset.route, r.querySelectorAll('td')[1].innerText]);"))
    assert rows == {g["alias"]: f"{g['requests']:,}" for g in data["volume"]["by_route"]}
    findings = browser.execute_script(
        "return Array.from(document.querySelectorAll('#findings li[data-finding]'))"
        ".map(f => f.dataset.finding);")
    assert findings == (["idle"] * len(shown["idle"]) + ["move"] * min(3, len(shown["moves"])))
    charts = browser.find_elements(By.CSS_SELECTOR, ".charts svg")
    assert len(charts) == 4
    assert browser.find_elements(By.CSS_SELECTOR, "#util-chart polyline")  # drawn, not empty
    browser.save_screenshot(str(tmp_path / "dashboard.png"))

    # nothing was fetched from anywhere but the gateway
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(base) for url in fetched)

    before = data["volume"]["requests"]
    traffic.send(n_chat=3, n_hard=0, n_pii=0)  # + one refused request (unknown model)
    wait.until(lambda b: _figure(b, "volume.requests") == f"{before + 4:,}")


def test_the_html_report_draws_the_idle_replicas_and_the_moves(browser, tmp_path):
    """Two replicas, one needed; a route with no hosted backend and one with: the page
    lists the idle finding first and prices only the move that can happen."""
    from selenium.webdriver.common.by import By

    from breakeven.gateway.config import GatewayConfig
    from breakeven.render.report_html import report_html
    from breakeven.report.build import build

    gpu = {"gpu": "h100", "usd_per_gpu_hour": 0.985, "capacity_tokens_per_s": 100}
    cfg = GatewayConfig.model_validate({
        "backends": [{"name": n, "url": f"http://{n}/v1", "model": "m", "hosting": "self",
                      "gpu": gpu} for n in ("r0", "r1")]
        + [{"name": "api", "url": "http://api/v1", "model": "m", "hosting": "hosted",
            "price": {"input_per_mtok": 1, "output_per_mtok": 1}}],
        "routes": [{"alias": "batchy", "backends": ["r0", "r1"]},
                   {"alias": "chat", "backends": ["r0", "r1", "api"]}]})
    t0 = 1_700_000_000 // 3600 * 3600.0
    rows = [{"hour": int(t0 // 3600), "key_name": "k", "alias": alias, "backend": backend,
             "hosting": "self", "data_class": "general", "task": "chat", "batch": 0,
             "status": 200, "other_side": "api", "requests": 1, "tokens_in": tokens,
             "tokens_out": 0, "usd": 0.0, "usd_other": 1.0, "other_known": 1,
             "fallbacks": 0, "escalated": 0, "latency_ms": 0.0, "first_ts": t0,
             "last_ts": t0 + 1} for alias, backend, tokens in (("batchy", "r0", 90_000),
                                                                ("chat", "r1", 60_000))]
    page = tmp_path / "report.html"
    page.write_text(report_html(build(rows, t0, t0 + 3600, cfg)))
    browser.get(page.as_uri())
    items = browser.find_elements(By.CSS_SELECTOR, "#findings li")
    assert [i.get_attribute("data-finding") for i in items] == ["idle", "move"]
    assert items[0].text == ("remove 1 idle replica of openai:m (2 provisioned, 1 needed): "
                             "$709.20/month")
    assert items[1].get_attribute("data-route") == "chat"
    assert "1 idle replica: $709/month" in browser.find_element(By.ID, "verdict").text
