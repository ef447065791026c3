"""The dashboard page: one self-contained HTML document (inline CSS, JS and SVG chart, no CDN).

The page polls ``/api/summary`` every few seconds and redraws in place, so it follows new batches
without a reload. Elements carry stable ids (``total``, ``count-<label>``, ``chart``, ``status``)
and ``data-value`` attributes with the raw numbers, which the browser tests read.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tweet sentiment, live</title>
<style>
  :root { --neg: #d64545; --neu: #8a8f98; --pos: #2e9e5b; --ink: #1d2430; --muted: #6b7280;
          --card: #ffffff; --bg: #f3f5f8; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--ink); background: var(--bg); }
  header { padding: 18px 28px; background: var(--ink); color: #fff; display: flex;
           align-items: baseline; gap: 16px; }
  header h1 { margin: 0; font-size: 20px; font-weight: 600; }
  header #status { color: #c8cdd6; font-size: 13px; }
  main { padding: 24px 28px; max-width: 1200px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 16px; }
  .card { background: var(--card); border-radius: 10px; padding: 16px 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); border-top: 4px solid var(--ink); }
  .card .label { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 34px; font-weight: 700; font-variant-numeric: tabular-nums; }
  .card .share { color: var(--muted); font-size: 13px; }
  .card.Negative { border-top-color: var(--neg); }
  .card.Neutral { border-top-color: var(--neu); }
  .card.Positive { border-top-color: var(--pos); }
  section.chart { margin-top: 22px; background: var(--card); border-radius: 10px; padding: 16px 18px;
                  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  section.chart h2 { margin: 0 0 8px; font-size: 15px; font-weight: 600; }
  .legend { display: flex; gap: 18px; font-size: 13px; color: var(--muted); }
  .legend span::before { content: ""; display: inline-block; width: 12px; height: 3px;
                         margin-right: 6px; vertical-align: middle; background: currentColor; }
  svg text { font-size: 11px; fill: var(--muted); }
  .empty { color: var(--muted); padding: 40px 0; text-align: center; }
</style>
</head>
<body data-loaded="0">
<header><h1>Tweet sentiment, live</h1><span id="status">loading&hellip;</span></header>
<main>
  <div class="cards" id="cards">
    <div class="card"><div class="label">Tweets processed</div>
      <div class="value" id="total" data-value="">&ndash;</div>
      <div class="share">scored English and Portuguese tweets</div></div>
  </div>
  <section class="chart">
    <h2>Tweets per hour by sentiment (UTC, stacked)</h2>
    <div class="legend" id="legend"></div>
    <svg id="chart" viewBox="0 0 960 320" width="100%" role="img"
         aria-label="tweets per hour by sentiment"></svg>
  </section>
</main>
<script>
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const COLORS = {Negative: "#d64545", Neutral: "#8a8f98", Positive: "#2e9e5b"};
const EXTRA = ["#3b6fd6", "#c27c0e", "#8e44ad", "#16a085"];
const SVG_NS = "http://www.w3.org/2000/svg";
const fmt = n => Number(n).toLocaleString("en-US");

function color(label, i) { return COLORS[label] || EXTRA[i % EXTRA.length]; }

function el(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderCards(data) {
  const total = document.getElementById("total");
  total.textContent = fmt(data.total);
  total.dataset.value = data.total;
  const cards = document.getElementById("cards");
  Object.entries(data.by_sentiment).forEach(([label, count]) => {
    let value = document.getElementById("count-" + label);
    if (!value) {
      const card = document.createElement("div");
      card.className = "card " + label;
      card.innerHTML = '<div class="label"></div><div class="value"></div><div class="share"></div>';
      card.querySelector(".label").textContent = label;
      value = card.querySelector(".value");
      value.id = "count-" + label;
      card.querySelector(".share").id = "share-" + label;
      cards.appendChild(card);
    }
    value.textContent = fmt(count);
    value.dataset.value = count;
    const share = data.total ? (100 * count / data.total).toFixed(1) + "% of total" : "";
    document.getElementById("share-" + label).textContent = share;
  });
}

function renderChart(data) {
  const svg = document.getElementById("chart");
  const legend = document.getElementById("legend");
  svg.replaceChildren();
  legend.replaceChildren();
  const labels = Object.keys(data.series);
  labels.forEach((label, i) => {
    const item = document.createElement("span");
    item.style.color = color(label, i);
    item.textContent = label;
    legend.appendChild(item);
  });
  const hours = data.hours;
  if (!hours.length) {
    svg.appendChild(el("text", {x: 480, y: 160, "text-anchor": "middle"}, "no hourly data yet"));
    return;
  }
  const W = 960, H = 320, L = 56, R = 16, T = 12, B = 40;
  // Stacked: each label is a band on top of the previous ones, the top edge is the hour's total.
  const stacked = [], base = hours.map(() => 0);
  labels.forEach(label => {
    const low = base.slice();
    data.series[label].forEach((v, i) => { base[i] += v; });
    stacked.push({label, low, high: base.slice()});
  });
  const top = Math.max(1, ...base);
  // Grid steps of 1, 2 or 5 times a power of ten, so the axis reads 0, 50, 100, ...
  const raw = top / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = Math.max(1, [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw));
  const max = Math.ceil(top / step) * step;
  const x = i => L + (hours.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (hours.length - 1));
  const y = v => T + (H - T - B) * (1 - v / max);
  for (let v = 0; v <= max; v += step) {
    svg.appendChild(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e7eb"}));
    svg.appendChild(el("text", {x: L - 8, y: y(v) + 4, "text-anchor": "end"}, fmt(v)));
  }
  const every = Math.max(1, Math.ceil(hours.length / 8));
  hours.forEach((h, i) => {
    // Every few hours, and the newest; skip one that would overlap the newest label.
    if (i !== hours.length - 1 && (i % every || hours.length - 1 - i < every / 2)) return;
    const d = new Date(h);
    const text = d.toISOString().slice(5, 10) + " " + d.toISOString().slice(11, 13) + "h";
    const anchor = hours.length > 1 && i === hours.length - 1 ? "end" : i === 0 && hours.length > 1
      ? "start" : "middle";
    svg.appendChild(el("text", {x: x(i), y: H - B + 18, "text-anchor": anchor}, text));
  });
  const dots = hours.length <= 48;  // beyond two days the markers only add noise
  stacked.forEach(({label, low, high}, li) => {
    const upper = high.map((v, i) => x(i) + "," + y(v));
    const lower = low.map((v, i) => x(i) + "," + y(v)).reverse();
    svg.appendChild(el("polygon", {points: upper.concat(lower).join(" "), fill: color(label, li),
                                   "fill-opacity": 0.28, stroke: "none"}));
    svg.appendChild(el("polyline", {points: upper.join(" "), fill: "none", stroke: color(label, li),
                                    "stroke-width": dots ? 2.5 : 1.5, "data-label": label}));
    if (!dots) return;
    high.forEach((v, i) => {
      const dot = el("circle", {cx: x(i), cy: y(v), r: 3, fill: color(label, li)});
      dot.appendChild(el("title", {}, label + " " + hours[i] + ": " + fmt(data.series[label][i])));
      svg.appendChild(dot);
    });
  });
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("api/summary", {cache: "no-store"});
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const data = await response.json();
    renderCards(data);
    renderChart(data);
    const v = data.versions;
    document.body.dataset.version = [v.tweets_by_sentiment, v.tweets_per_hour_by_sentiment].join("/");
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded) + 1);
    status.textContent = data.ready
      ? "updated " + data.read_at.slice(11, 19) + " UTC \\u00b7 gold version " + v.tweets_by_sentiment
        + " \\u00b7 refreshes every " + REFRESH_MS / 1000 + " s"
      : "waiting for gold/tweets_by_sentiment\\u2026";
  } catch (err) {
    status.textContent = "cannot read the lake: " + err.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""


def render_page(refresh_seconds: float) -> str:
    return PAGE.replace("__REFRESH_MS__", str(max(200, int(refresh_seconds * 1000))))
