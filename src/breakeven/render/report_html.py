"""One page for the report: ``breakeven report --html`` and the gateway's ``/dashboard``.

The page draws itself from the report JSON (schema ``breakeven.report/v1``) with a few
lines of script and inline SVG: nothing is fetched from the internet. The file written by
``--html`` carries its JSON inside; the dashboard fetches ``/admin/report`` with the admin
key the user types (kept in the tab's sessionStorage, sent as a bearer token) and redraws
every ``refresh_s`` seconds. Every text from the data is set with ``textContent``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dashboard_html", "report_html"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1200px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:22px 0 6px}
.muted{color:#667} .verdict{font-size:16px;font-weight:600;margin:10px 0 4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid #d8dce4;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:18px} .charts{display:grid;
grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #eee;
text-align:right} td:first-child,th:first-child{text-align:left}
.note{color:#8a5a00} svg text{font:11px system-ui,sans-serif;fill:#445}
#login{display:none;margin:20px 0} #error{color:#b00020}
"""

_SCRIPT = r"""
const NS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
const usd = (x) => x == null ? '-' : (x !== 0 && Math.abs(x) < 0.01)
  ? '$' + Number(x).toPrecision(2) : '$' + Number(x).toLocaleString('en-US',
  {minimumFractionDigits: 2, maximumFractionDigits: 2});
const pct = (x) => x == null ? '-' : (100 * x).toFixed(1) + '%';
const num = (x) => x == null ? '-' : Number(x).toLocaleString('en-US');
const COLORS = {hosted: '#4c78a8', self: '#f58518', other: '#54a24b', line: '#e45756'};

function el(tag, attrs, parent, text) {
  const node = ['svg', 'rect', 'line', 'text', 'polyline', 'circle', 'title'].includes(tag)
    ? document.createElementNS(NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function chart(id, title, labels, series, opts) {
  // series: [{name, values, color, kind: 'bar'|'line', stack}], opts: {fmt, marks, max}
  const box = $(id); box.replaceChildren();
  el('h2', {}, box, title);
  const W = 560, H = 240, L = 64, B = 46, T = 10, R = 10;
  const svg = el('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
                         'aria-label': title}, box);
  if (!labels.length) { el('text', {x: L, y: H / 2}, svg, 'no data in this window'); return; }
  const stacked = labels.map((_, i) => series.filter(s => s.kind === 'bar')
    .reduce((a, s) => a + (s.values[i] || 0), 0));
  const lines = series.filter(s => s.kind === 'line').flatMap(s => s.values);
  const top = Math.max(opts.max || 0, ...stacked, ...lines.map(x => x || 0),
                       ...(opts.marks || []).map(m => m.value)) || 1;
  const x0 = (i) => L + (W - L - R) * i / labels.length;
  const bw = (W - L - R) / labels.length;
  const y = (v) => H - B - (H - B - T) * v / top;
  for (let k = 0; k <= 4; k++) {
    const v = top * k / 4;
    el('line', {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#eee'}, svg);
    el('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, svg, opts.fmt(v));
  }
  const base = labels.map(() => 0);
  for (const s of series.filter(s => s.kind === 'bar')) {
    s.values.forEach((v, i) => {
      if (!v) return;
      el('rect', {x: x0(i) + bw * 0.15, width: Math.max(1, bw * 0.7),
                  y: y(base[i] + v), height: y(base[i]) - y(base[i] + v), fill: s.color},
         svg).appendChild(el('title', {}, null, `${labels[i]} ${s.name}: ${opts.fmt(v)}`));
      base[i] += v;
    });
  }
  for (const s of series.filter(s => s.kind === 'line')) {
    const pts = s.values.map((v, i) => `${x0(i) + bw / 2},${y(v || 0)}`).join(' ');
    el('polyline', {points: pts, fill: 'none', stroke: s.color, 'stroke-width': 2}, svg);
    s.values.forEach((v, i) => el('circle', {cx: x0(i) + bw / 2, cy: y(v || 0), r: 3,
                                             fill: s.color}, svg)
      .appendChild(el('title', {}, null, `${labels[i]} ${s.name}: ${opts.fmt(v || 0)}`)));
  }
  for (const m of opts.marks || []) {
    el('line', {x1: L, x2: W - R, y1: y(m.value), y2: y(m.value), stroke: '#999',
                'stroke-dasharray': '4 3'}, svg);
    el('text', {x: W - R - 2, y: y(m.value) - 3, 'text-anchor': 'end'}, svg, m.label);
  }
  const every = Math.ceil(labels.length / 8);
  labels.forEach((lab, i) => {
    if (i % every === 0) el('text', {x: x0(i) + bw / 2, y: H - B + 14, 'text-anchor':
                                     'middle'}, svg, lab);
  });
  const legend = el('div', {class: 'muted'}, box);
  for (const s of series) {
    const key = el('span', {style: `margin-right:12px`}, legend);
    el('span', {style: `display:inline-block;width:10px;height:10px;margin-right:4px;` +
                       `background:${s.color}`}, key);
    key.appendChild(document.createTextNode(s.name));
  }
}

function card(parent, label, value, figure) {
  const c = el('div', {class: 'card'}, parent);
  el('b', {'data-figure': figure}, c, value);
  el('span', {class: 'muted'}, c, label);
}

function render(d) {
  window.report = d;  // the figures on screen, for whoever inspects the page
  const w = d.window, v = d.volume, c = d.cost, u = d.utilisation, cf = d.counterfactuals;
  $('window').textContent = `${w.start} .. ${w.until} (${w.hours.toFixed(1)} h)` +
    (w.plan ? ` · plan ${w.plan}` : '');
  $('verdict').textContent = d.verdict.headline;
  $('verdict').setAttribute('data-verdict', d.verdict.verdict);
  const reasons = $('reasons'); reasons.replaceChildren();
  d.verdict.reasons.forEach(r => el('li', {}, reasons, r));
  const cards = $('cards'); cards.replaceChildren();
  card(cards, 'requests', num(v.requests), 'volume.requests');
  card(cards, 'hosted, per month', usd(c.monthly.hosted_usd), 'cost.monthly.hosted_usd');
  card(cards, 'self-hosted, per month', usd(c.monthly.self_usd), 'cost.monthly.self_usd');
  card(cards, 'total, per month', usd(c.monthly.total_usd), 'cost.monthly.total_usd');
  card(cards, 'all hosted, per month', usd(cf.all_hosted.monthly_usd),
       'counterfactuals.all_hosted.monthly_usd');
  card(cards, 'GPU utilisation', pct(u.mean), 'utilisation.mean');
  card(cards, 'errors', num(v.errors), 'volume.errors');
  const days = v.by_day;
  chart('cost-chart', 'Cost per day by side, and all traffic hosted', days.map(x => x.day), [
    {name: 'hosted', kind: 'bar', color: COLORS.hosted, values: days.map(x => x.hosted_usd)},
    {name: 'self-hosted (GPUs + ops)', kind: 'bar', color: COLORS.self,
     values: days.map(x => x.self_usd)},
    {name: 'all hosted (counterfactual)', kind: 'line', color: COLORS.line,
     values: days.map(x => x.all_hosted_usd)}], {fmt: usd});
  const hrs = u.by_hour;
  chart('util-chart', 'Self-hosted utilisation by hour', hrs.map(x => x.hour.slice(5, 13)), [
    {name: 'utilisation', kind: 'line', color: COLORS.self, values: hrs.map(x => x.utilisation)},
    {name: 'without batch', kind: 'line', color: COLORS.hosted,
     values: hrs.map(x => x.without_batch)}],
    {fmt: pct, max: 1, marks: [{value: 0.3, label: '30%'}, {value: 0.8, label: '80%'}]});
  const routes = v.by_route;
  chart('route-chart', 'Requests by route', routes.map(x => x.alias || '(none)'), [
    {name: 'requests', kind: 'bar', color: COLORS.other, values: routes.map(x => x.requests)}],
    {fmt: (x) => num(Math.round(x))});
  chart('mtok-chart', 'Cost per million tokens', ['hosted', 'self-hosted'], [
    {name: 'hosted', kind: 'bar', color: COLORS.hosted, values: [c.usd_per_mtok.hosted, 0]},
    {name: 'self-hosted', kind: 'bar', color: COLORS.self, values: [0, c.usd_per_mtok.self]}],
    {fmt: usd});
  const findings = $('findings'); findings.replaceChildren();
  for (const x of d.idle || []) {
    el('li', {'data-finding': 'idle', 'data-pool': x.pool}, findings,
       `remove ${x.idle_replicas} idle replica${x.idle_replicas === 1 ? '' : 's'} of ` +
       `${x.pool} (${x.replicas} provisioned, ${x.needed_replicas} needed): ` +
       `${usd(x.monthly_saving_usd)}/month`);
  }
  for (const m of d.moves.slice(0, 3)) {
    el('li', {'data-finding': 'move', 'data-route': m.route}, findings,
       `move route ${m.route} to ${m.to === 'hosted' ? 'the hosted API' : 'self-hosted'}: ` +
       `${usd(m.monthly_saving_usd)}/month`);
  }
  if (!findings.children.length) el('li', {class: 'muted'}, findings, 'none');
  const table = $('routes'); table.replaceChildren();
  const head = el('tr', {}, table);
  ['route', 'requests', 'tokens in', 'tokens out', 'errors', 'fallbacks', 'escalations',
   'usd'].forEach(h => el('th', {}, head, h));
  for (const r of routes) {
    const tr = el('tr', {'data-route': r.alias}, table);
    [r.alias || '(none)', num(r.requests), num(r.tokens_in), num(r.tokens_out),
     num(r.errors), num(r.fallbacks), num(r.escalations), usd(r.usd)]
      .forEach(x => el('td', {}, tr, x));
  }
  const notes = $('notes'); notes.replaceChildren();
  d.notes.forEach(n => el('li', {class: 'note'}, notes, n));
}
"""

_DASHBOARD = r"""
const KEY = 'breakeven-admin-key';
function login(message) {
  $('login').style.display = 'block';
  $('error').textContent = message || '';
}
async function load() {
  const key = sessionStorage.getItem(KEY);
  if (!key) return login();
  let res;
  try {
    res = await fetch('/admin/report?since=' + encodeURIComponent($('since').value),
                      {headers: {Authorization: 'Bearer ' + key}});
  } catch (e) { $('error').textContent = 'gateway unreachable: ' + e; return schedule(); }
  if (res.status === 401 || res.status === 403) {
    sessionStorage.removeItem(KEY);
    return login((await res.json()).error.message);
  }
  if (!res.ok) { $('error').textContent = 'report failed: HTTP ' + res.status; return schedule(); }
  $('login').style.display = 'none'; $('error').textContent = '';
  render(await res.json());
  $('updated').textContent = 'updated ' + new Date().toISOString().slice(0, 19) + 'Z';
  schedule();
}
let timer;
function schedule() { clearTimeout(timer); timer = setTimeout(load, REFRESH_S * 1000); }
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $('key').value);
  $('key').value = '';
  load();
});
$('since').addEventListener('change', load);
load();
"""

_BODY = """
<h1>{title}</h1>
<div class="muted"><span id="window"></span> <span id="updated"></span></div>
{controls}
<div class="verdict" id="verdict"></div>
<ul id="reasons"></ul>
<div class="cards" id="cards"></div>
<h2>Findings</h2><ul id="findings"></ul>
<div class="charts"><div id="cost-chart"></div><div id="util-chart"></div>
<div id="route-chart"></div><div id="mtok-chart"></div></div>
<h2>By route</h2><table id="routes"></table>
<ul id="notes"></ul>
"""

_CONTROLS = """
<form id="login"><label>Admin key <input id="key" type="password" autocomplete="off">
</label> <button type="submit">Show</button></form>
<div id="error"></div>
<label class="muted">Window <select id="since"><option>1h</option><option>24h</option>
<option selected>7d</option><option>30d</option></select></label>
"""


def _page(title: str, body: str, script: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{title}</title><style>{_STYLE}</style></head><body>{body}"
            f"<script>{_SCRIPT}{script}</script></body></html>")


def report_html(data: dict[str, Any]) -> str:
    """A self-contained page for one report (its JSON inside)."""
    blob = json.dumps(data).replace("</", "<\\/")
    return _page("breakeven report", _BODY.format(title="breakeven report", controls=""),
                 f"render({blob});")


def dashboard_html(refresh_s: float) -> str:
    """The gateway's live page: asks for the admin key, then polls ``/admin/report``."""
    return _page("breakeven dashboard",
                 _BODY.format(title="breakeven dashboard", controls=_CONTROLS),
                 f"const REFRESH_S = {float(refresh_s)!r};{_DASHBOARD}")
