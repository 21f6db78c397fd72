// odia-stream dashboard: polls api/state and renders it. Plain JS, no dependencies.
// Every value from the stream is written with textContent (queries come from users).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
let lastView = null;
let lastRevision = -1;

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children || []) node.appendChild(c);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(0) + "%"; }
function ms(x) { return x === null || x === undefined ? "–" : x.toFixed(0) + " ms"; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function hhmm(date) { return date.toTimeString().slice(0, 5); }

function list(items, cls) {
  return el("ul", { class: cls || "" }, items.map((t) => el("li", { text: t })));
}

function renderVersions(view) {
  const s = view.serving;
  document.getElementById("serving-generator").textContent = s && s.adapter_version ? s.adapter_version : "–";
  document.getElementById("serving-router").textContent = s && s.router_version ? s.router_version : "–";
  document.getElementById("serving-at").textContent = s ? "(as of " + when(s.answered_at) + ")" : "";
  const body = document.querySelector("#promoted tbody");
  body.replaceChildren(...view.promoted.map((m) => {
    const metrics = Object.entries(m.eval_metrics).map(([k, v]) => k + "=" + (+v).toFixed(3)).join(", ");
    return el("tr", { "data-generator": m.generator }, [
      el("td", { class: "m-generator", text: m.generator }),
      el("td", { class: "m-version" }, m.version ? [el("code", { text: m.version })] : [el("em", { text: "no adapter (templates only)" })]),
      el("td", { class: "m-router", text: m.router_version || "–" }),
      el("td", { class: "m-base", text: m.base_model || "–" }),
      el("td", { class: "m-metrics", text: metrics || "–" }),
      el("td", { class: "m-previous", text: m.previous_version || "–" }),
      el("td", { class: "m-created", text: when(m.created_at) }),
    ]);
  }));
  document.getElementById("promoted-empty").hidden = view.promoted.length > 0;
}

function renderTraffic(traffic) {
  document.getElementById("traffic-requests").textContent = String(traffic.requests);
  document.getElementById("traffic-coverage").textContent = pct(traffic.coverage);
  document.getElementById("traffic-p50").textContent = ms(traffic.p50_ms);
  document.getElementById("traffic-p90").textContent = ms(traffic.p90_ms);
  const sp = traffic.small_path || {};
  document.getElementById("traffic-small-path").textContent =
    ["hedged", "small_busy", "small_not_faster"].map((r) => String(sp[r] || 0)).join(" / ");
  drawChart(document.getElementById("traffic-chart"), traffic);
}

// The smallest 1, 2 or 5 times a power of ten that is >= x (a round axis maximum).
function niceCeil(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function drawChart(chart, traffic) {
  const W = 820, H = 260, L = 48, R = 60, T = 12, B = 30;
  const pts = traffic.points;
  chart.replaceChildren();
  chart.setAttribute("data-points", String(pts.length));
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = T + (1 - f) * (H - T - B);
    chart.appendChild(svg("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }));
    chart.appendChild(svg("text", { class: "axis-label", x: L - 6, y: y + 4, "text-anchor": "end" }, (100 * f) + "%"));
  }
  if (pts.length === 0) {
    chart.appendChild(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, "no responses yet"));
    return;
  }
  const bucketMs = traffic.bucket_s * 1000;
  const t0 = Date.parse(pts[0].start);
  const t1 = Date.parse(pts[pts.length - 1].start) + bucketMs;
  const maxMs = niceCeil(Math.max(1, ...pts.map((p) => p.p90_ms)) * 1.05);
  const x = (p) => L + ((Date.parse(p.start) + bucketMs / 2 - t0) / (t1 - t0)) * (W - L - R);
  const yCov = (v) => T + (1 - v) * (H - T - B);
  const yMs = (v) => T + (1 - v / maxMs) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    chart.appendChild(svg("text", { class: "axis-label", x: W - R + 6, y: yMs(f * maxMs) + 4 }, (f * maxMs).toFixed(0) + " ms"));
  }
  const step = Math.ceil(pts.length / 8);
  const ticks = pts.filter((_, i) => i % step === 0);
  for (const p of ticks) {
    chart.appendChild(svg("text", { class: "axis-label", x: x(p), y: H - 8, "text-anchor": "middle" }, hhmm(new Date(p.start))));
  }
  const series = [
    ["coverage", (p) => yCov(p.coverage), (p) => pct(p.coverage) + " coverage (small model or template)"],
    ["p50", (p) => yMs(p.p50_ms), (p) => "p50 " + ms(p.p50_ms)],
    ["p90", (p) => yMs(p.p90_ms), (p) => "p90 " + ms(p.p90_ms)],
  ];
  for (const [name, y, label] of series) {
    chart.appendChild(svg("polyline", { class: name, points: pts.map((p) => x(p) + "," + y(p)).join(" ") }));
    for (const p of pts) {
      const dot = svg("circle", { class: "pt pt-" + name + " " + name, cx: x(p), cy: y(p), r: 3.5,
        "data-start": p.start, "data-value": name === "coverage" ? p.coverage : (name === "p50" ? p.p50_ms : p.p90_ms) });
      dot.appendChild(svg("title", {}, when(p.start) + ": " + label(p) + " (" + p.requests + " requests)"));
      chart.appendChild(dot);
    }
  }
}

function renderTotals(view) {
  const box = document.getElementById("totals");
  box.replaceChildren(...view.totals.map((t) => el("div", { class: "figure", "data-label": t.label }, [
    el("span", { class: "k", text: t.label + " clusters" }),
    el("span", { class: "v", text: t.clusters + " · " + t.records + " records" }),
  ])));
}

function matches(c, needle) {
  if (!needle) return true;
  const hay = [c.cluster_id, c.app, c.label, c.dominant_function || "", ...c.templates, ...c.sample_queries]
    .join("\n").toLowerCase();
  return hay.includes(needle);
}

function renderClusters(view) {
  const needle = document.getElementById("filter").value.trim().toLowerCase();
  const rows = view.clusters.filter((c) => matches(c, needle));
  const body = document.querySelector("#clusters tbody");
  body.replaceChildren(...rows.map((c) => el("tr", { class: "cluster-row", "data-cluster-id": c.cluster_id, "data-label": c.label }, [
    el("td", { class: "c-id" }, [el("code", { text: c.cluster_id }), el("div", { class: "muted", text: c.app })]),
    el("td", { class: "c-label" }, [el("span", { class: "label " + c.label, text: c.label })]),
    el("td", { class: "c-size num", text: String(c.size) }),
    el("td", { class: "c-queries num", text: String(c.unique_queries) }),
    el("td", { class: "c-function", text: c.dominant_function || "–" }),
    el("td", { class: "c-share num", title: "Wilson lower bound " + pct(c.share_lower_bound), text: pct(c.dominant_share) }),
    el("td", { class: "c-train num", text: String(c.training_examples) }),
    el("td", { class: "c-templates" }, [list(c.templates)]),
    el("td", { class: "c-samples" }, [list(c.sample_queries)]),
  ])));
  const shown = view.clusters.length;
  let note = view.clusters_live + " live clusters";
  if (shown < view.clusters_live) note += ", the " + shown + " largest shown";
  if (view.clusters_merged) note += "; " + view.clusters_merged + " merged into others (hidden)";
  if (needle) note += "; " + rows.length + " match the filter";
  document.getElementById("clusters-note").textContent = note;
}

function renderStream(view) {
  const r = view.stream.records;
  let text = "read: " + r.cluster_state + " cluster states, " + r.response + " responses, " + r.model_update + " model updates";
  if (view.stream.invalid) text += "; " + view.stream.invalid + " unreadable (last: " + view.stream.last_error + ")";
  if (view.traffic.dropped) text += "; " + view.traffic.dropped + " responses outside the window or repeated";
  const a = view.ingest;
  if (a) {
    text += " · ingest audit: " + a.read + " read = " + a.accepted + " accepted + " + a.duplicates + " duplicates + " +
      a.replayed + " replayed + " + a.dead_letters + " dead letters";
    if (a.reused_offsets) text += " (" + a.reused_offsets + " at reused offsets)";
    text += a.adds_up ? ": adds up" : ": DOES NOT ADD UP (" + a.unaccounted + " offsets unaccounted)";
  }
  document.getElementById("stream").textContent = text;
}

function render(view) {
  renderVersions(view);
  renderTraffic(view.traffic);
  renderTotals(view);
  renderClusters(view);
  renderStream(view);
  document.body.setAttribute("data-revision", String(view.revision));
}

function setStatus(state, text) {
  const s = document.getElementById("status");
  s.setAttribute("data-state", state);
  s.textContent = text;
}

async function poll() {
  let delay = lastView ? lastView.refresh_s * 1000 : 2000;
  try {
    const resp = await fetch("api/state", { cache: "no-store" });
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    const view = await resp.json();
    delay = view.refresh_s * 1000;
    if (view.revision !== lastRevision) {
      render(view);
      lastRevision = view.revision;
    }
    lastView = view;
    setStatus("ok", "live · updated " + new Date().toLocaleTimeString());
  } catch (err) {
    setStatus("error", "cannot reach the dashboard server (" + err.message + "); retrying");
  }
  setTimeout(poll, delay);
}

document.getElementById("filter").addEventListener("input", () => { if (lastView) renderClusters(lastView); });
poll();
