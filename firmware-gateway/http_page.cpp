// The status page of GET / (SPEC §9): one HTML document with its style and
// script inline, no external resources. The script polls /api/status once a
// second and writes every value with textContent (never as HTML), so a
// sensor value or a dead letter's detail cannot inject markup.
#include "http_render.h"

namespace tg::http {

namespace {

constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tidegate</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1c2430}
header{background:#123;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.3em 1.2em;align-items:baseline}
header h1{font-size:1.2em;margin:0}
main{padding:.5em;max-width:60em;margin:auto}
section{background:#fff;border-radius:6px;margin:.6em 0;padding:.4em .8em;overflow-x:auto}
h2{font-size:1em;margin:.3em 0;color:#345}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.25em .4em;border-bottom:1px solid #e4e8ec;white-space:nowrap}
th{font-weight:600;color:#567;font-size:.85em}
.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;background:#dde3e8}
.firing,.open,.off-link,.failed{background:#f8d0cc;color:#8a1c12}
.pending,.half_open,.running{background:#fbe7b5;color:#6d4c00}
.on,.ok,.completed{background:#cdeccf;color:#1d5e24}
.stale{color:#b06000}
svg{vertical-align:middle}
button{font:inherit;padding:.1em .8em}
.muted{color:#789}
</style>
</head>
<body>
<header><h1 id="gw">tidegate</h1><span id="link" class="badge">…</span><span id="outbox"></span><span id="uptime" class="muted"></span></header>
<main>
<section><h2>Sensors</h2><table><thead><tr><th>sensor</th><th class="num">value</th><th>unit</th><th class="num">age</th><th>recent</th></tr></thead><tbody id="sensors"></tbody></table></section>
<section><h2>Rules</h2><table><thead><tr><th>rule</th><th>state</th><th>since</th><th class="num">fired</th></tr></thead><tbody id="rules"></tbody></table></section>
<section><h2>Outputs</h2><table><thead><tr><th>output</th><th>state</th><th></th></tr></thead><tbody id="outputs"></tbody></table></section>
<section id="breakers-s" hidden><h2>Circuit breakers</h2><table><tbody id="breakers"></tbody></table></section>
<section id="sagas-s" hidden><h2>Sagas</h2><table><tbody id="sagas"></tbody></table></section>
<section><h2>Recent dead letters</h2><table><tbody id="deadletters"></tbody></table></section>
<p class="muted" id="note"></p>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(tbody, key, cells) {
  let tr = tbody.querySelector('tr[data-key="' + CSS.escape(key) + '"]');
  if (!tr) { tr = document.createElement("tr"); tr.dataset.key = key; tbody.appendChild(tr); }
  tr.replaceChildren(...cells);
  return tr;
}
function prune(tbody, keys) {
  for (const tr of [...tbody.children]) if (!keys.has(tr.dataset.key)) tr.remove();
}
function age(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return s.toFixed(0) + " s";
  if (s < 5400) return (s / 60).toFixed(0) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function badge(text, cls) {
  const td = el("td");
  td.appendChild(el("span", text, "badge " + cls));
  return td;
}
function when(ts) { return ts ? new Date(ts).toLocaleTimeString() : "–"; }
function spark(values) {
  const td = el("td");
  const pts = values.map((v, i) => [i, v]).filter((p) => p[1] !== null);
  if (pts.length < 2) return td;
  const ns = "http://www.w3.org/2000/svg", w = 120, h = 24;
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (hi === lo) { hi += 1; lo -= 1; }
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#2a6ebb");
  line.setAttribute("points", pts.map((p) =>
    (p[0] * (w - 2) / Math.max(1, values.length - 1) + 1).toFixed(1) + "," +
    (h - 2 - (p[1] - lo) * (h - 4) / (hi - lo)).toFixed(1)).join(" "));
  svg.appendChild(line); td.appendChild(svg);
  return td;
}
function show(s) {
  $("gw").textContent = "tidegate · " + s.gateway;
  document.title = "tidegate · " + s.gateway;
  const l = $("link");
  l.textContent = s.link.connected ? "connected · " + s.link.uri : "broker unreachable · " + s.link.uri;
  l.className = "badge " + (s.link.connected ? "ok" : "off-link");
  $("outbox").textContent = "outbox " + s.outbox.depth + " waiting" + (s.outbox.dropped ? ", " + s.outbox.dropped + " dropped" : "");
  $("uptime").textContent = "v" + s.version + " · up " + age(s.uptime_s) + " · reconnects " + s.link.reconnects;
  let keys = new Set();
  for (const x of s.sensors) {
    keys.add(x.name);
    const v = x.value === null ? "–" : typeof x.value === "number" ? String(x.value) : String(x.value);
    const tr = row($("sensors"), x.name, [el("td", x.name), el("td", v, "num value"), el("td", x.unit),
      el("td", age(x.age), "num" + (x.age > 120 ? " stale" : "")), spark(x.history)]);
    tr.dataset.value = v;
  }
  prune($("sensors"), keys);
  keys = new Set();
  for (const r of s.rules) {
    keys.add(r.name);
    const tr = row($("rules"), r.name, [el("td", r.name), badge(r.state, r.state),
      el("td", when(r.since)), el("td", r.fired, "num")]);
    tr.dataset.rule = r.name; tr.dataset.state = r.state;
  }
  prune($("rules"), keys);
  keys = new Set();
  for (const o of s.outputs) {
    keys.add(o.name);
    const state = o.value === null ? "unknown" : o.value;
    const cells = [el("td", o.name), badge(state, state)];
    const act = el("td");
    if (o.remote && s.switches) {
      const b = el("button", o.value === "on" ? "switch off" : "switch on");
      b.onclick = () => fetch(location.origin + "/api/outputs/" + encodeURIComponent(o.name),
        {method: "POST", body: o.value === "on" ? "off" : "on"}).then(poll);
      act.appendChild(b);
    }
    cells.push(act);
    const tr = row($("outputs"), o.name, cells);
    tr.dataset.output = o.name; tr.dataset.state = state;
  }
  prune($("outputs"), keys);
  keys = new Set();
  for (const b of s.breakers) {
    keys.add(b.target);
    row($("breakers"), b.target, [el("td", b.target), badge(b.state, b.state),
      el("td", b.failures + " failure(s)"), el("td", b.detail, "muted")]);
  }
  prune($("breakers"), keys);
  $("breakers-s").hidden = s.breakers.length === 0;
  keys = new Set();
  for (const g of s.sagas) {
    keys.add(g.rule);
    row($("sagas"), g.rule, [el("td", g.rule), badge(g.state, g.state),
      el("td", g.step), el("td", g.reason, "muted"), el("td", when(g.ts))]);
  }
  prune($("sagas"), keys);
  $("sagas-s").hidden = s.sagas.length === 0;
  const dl = $("deadletters");
  dl.replaceChildren(...s.deadletters.slice().reverse().map((d) => {
    const tr = el("tr");
    tr.append(el("td", when(d.ts)), el("td", d.source), el("td", d.reason), el("td", d.detail, "muted"));
    return tr;
  }));
  if (s.deadletters.length === 0) dl.replaceChildren(el("tr", "none", "muted"));
  $("note").textContent = "updated " + new Date().toLocaleTimeString();
}
let busy = false;
function poll() {
  if (busy) return;
  busy = true;
  // location.origin: never the user:password of an address typed with them.
  fetch(location.origin + "/api/status", {cache: "no-store"})
    .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(show)
    .catch((e) => { $("link").textContent = "gateway unreachable (" + e.message + ")"; $("link").className = "badge off-link"; })
    .finally(() => { busy = false; });
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view status_page() {
    return kPage;
}

}  // namespace tg::http
