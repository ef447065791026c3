"""The dashboard page: one self-contained HTML document (inline CSS, JS and SVG charts, no CDN).

Three panels: tweet sentiment (with a language filter), Telegram activity (messages per day and
per hour of the day) and the Action & Adventure overview beside it. The page polls
``/api/summary[?lang=xx]`` every few seconds and redraws in place, so it follows new batches
without a reload. Elements carry stable ids (``total``, ``count-<label>``, ``chart``, ``status``,
``lang``, ``tg-total``, ``tg-days``, ``tg-hours``, ``aa-titles``, ``aa-chart``, ``aa-table``) and
``data-value`` attributes with the raw numbers, which the browser tests read.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lakehouse, live: tweets, Telegram, Action &amp; Adventure</title>
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
  section.chart h2 { display: flex; align-items: center; gap: 12px; }
  section.chart h2 select { font: inherit; font-weight: 400; font-size: 13px; padding: 2px 6px; }
  .panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 22px; }
  .panels section.chart h3 { margin: 12px 0 4px; font-size: 13px; font-weight: 600; color: var(--muted); }
  .panel-note { color: var(--muted); font-size: 13px; }
  table.years { width: 100%; border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
  table.years th, table.years td { padding: 3px 6px; text-align: right; border-bottom: 1px solid #eef0f3; }
  table.years th:first-child, table.years td:first-child { text-align: left; }
  .scroll { max-height: 220px; overflow-y: auto; }
</style>
</head>
<body data-loaded="0">
<header><h1>Lakehouse, live</h1><span id="status">loading&hellip;</span></header>
<main>
  <div class="cards" id="cards">
    <div class="card"><div class="label">Tweets processed</div>
      <div class="value" id="total" data-value="">&ndash;</div>
      <div class="share">scored English and Portuguese tweets</div></div>
  </div>
  <section class="chart">
    <h2>Tweets per hour by sentiment (UTC, stacked)
      <select id="lang" aria-label="language"><option value="">all languages</option></select></h2>
    <div class="legend" id="legend"></div>
    <svg id="chart" viewBox="0 0 960 320" width="100%" role="img"
         aria-label="tweets per hour by sentiment"></svg>
  </section>
  <div class="panels">
    <section class="chart" id="telegram">
      <h2>Telegram activity</h2>
      <div class="panel-note"><span class="value" id="tg-total" data-value="">&ndash;</span>
        messages in the days shown (every chat)</div>
      <h3>Messages per UTC day</h3>
      <svg id="tg-days" viewBox="0 0 460 170" width="100%" role="img" aria-label="messages per day"></svg>
      <h3>Messages per hour of the day (UTC)</h3>
      <svg id="tg-hours" viewBox="0 0 460 170" width="100%" role="img" aria-label="messages per hour"></svg>
    </section>
    <section class="chart" id="action-adventure">
      <h2>Action &amp; Adventure</h2>
      <div class="panel-note"><span class="value" id="aa-titles" data-value="">&ndash;</span>
        Action or Adventure movies, per release year</div>
      <svg id="aa-chart" viewBox="0 0 460 170" width="100%" role="img" aria-label="movies per year"></svg>
      <div class="scroll"><table class="years" id="aa-table">
        <thead><tr><th>year</th><th>movies</th><th>action</th><th>adventure</th><th>IMDB</th>
          <th>TMDB</th><th>MovieLens</th><th>ROI</th></tr></thead><tbody></tbody></table></div>
    </section>
  </div>
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

// Bars with a value axis: one <rect data-label data-value> per value (the tests read them).
function renderBars(svgId, labels, values, fill, tickEvery, emptyText) {
  const svg = document.getElementById(svgId);
  svg.replaceChildren();
  const W = 460, H = 170, L = 40, R = 8, T = 8, B = 24;
  if (!values.length) {
    svg.appendChild(el("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, emptyText));
    return;
  }
  const top = Math.max(1, ...values);
  const raw = top / 3, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = Math.max(1, [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw));
  const max = Math.ceil(top / step) * step;
  const y = v => T + (H - T - B) * (1 - v / max);
  for (let v = 0; v <= max; v += step) {
    svg.appendChild(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e7eb"}));
    svg.appendChild(el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"}, fmt(v)));
  }
  const band = (W - L - R) / values.length, width = Math.max(1, band * 0.75);
  values.forEach((v, i) => {
    const bar = el("rect", {x: L + i * band + (band - width) / 2, y: y(v), width: width,
                            height: Math.max(0, y(0) - y(v)), fill: fill,
                            "data-label": labels[i], "data-value": v});
    bar.appendChild(el("title", {}, labels[i] + ": " + fmt(v)));
    svg.appendChild(bar);
    if (i % tickEvery === 0 || i === values.length - 1 && values.length <= tickEvery) {
      svg.appendChild(el("text", {x: L + i * band + band / 2, y: H - 8, "text-anchor": "middle"}, labels[i]));
    }
  });
}

function renderTelegram(tg) {
  const total = document.getElementById("tg-total");
  total.textContent = fmt(tg.total);
  total.dataset.value = tg.total;
  const days = tg.days.map(d => d.slice(5));
  renderBars("tg-days", days, tg.per_day, "#3b6fd6", Math.max(1, Math.ceil(days.length / 6)),
             tg.ready ? "no messages yet" : "waiting for gold/telegram_messages_per_day");
  const hours = tg.per_hour.map((_, h) => String(h).padStart(2, "0") + "h");
  renderBars("tg-hours", hours, tg.ready ? tg.per_hour : [], "#16a085", 3,
             "waiting for gold/telegram_messages_per_hour_weekday_week");
}

function renderActionAdventure(aa) {
  const titles = document.getElementById("aa-titles");
  titles.textContent = fmt(aa.titles);
  titles.dataset.value = aa.titles;
  const years = aa.rows.map(r => String(r.year));
  renderBars("aa-chart", years, aa.rows.map(r => r.title_count), "#c0392b",
             Math.max(1, Math.ceil(years.length / 6)),
             aa.ready ? "no Action or Adventure movies yet" : "waiting for gold/action_adventure_overview");
  const body = document.querySelector("#aa-table tbody");
  body.replaceChildren();
  const num = (v, digits) => v === null || v === undefined ? "\u2013" : Number(v).toFixed(digits);
  aa.rows.slice().reverse().forEach(r => {
    const tr = document.createElement("tr");
    tr.dataset.year = r.year;
    [String(r.year), fmt(r.title_count), fmt(r.action_count), fmt(r.adventure_count),
     num(r.avg_imdb_rating, 1), num(r.avg_tmdb_rating, 1), num(r.avg_movielens_rating, 1), num(r.roi, 1)]
      .forEach(text => {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
    body.appendChild(tr);
  });
}

function renderLanguages(data) {
  const select = document.getElementById("lang");
  const wanted = ["", ...data.languages];
  if (data.lang && !wanted.includes(data.lang)) wanted.push(data.lang);
  const have = [...select.options].map(o => o.value);
  if (have.join() !== wanted.join()) {
    select.replaceChildren();
    wanted.forEach(code => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = code ? code : "all languages";
      select.appendChild(option);
    });
  }
  select.value = data.lang;
}

async function refresh() {
  const status = document.getElementById("status");
  const lang = document.getElementById("lang").value;
  try {
    const response = await fetch("api/summary" + (lang ? "?lang=" + encodeURIComponent(lang) : ""),
                                 {cache: "no-store"});
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const data = await response.json();
    if (data.lang !== document.getElementById("lang").value) return;  // the filter changed meanwhile
    renderCards(data);
    renderChart(data);
    renderLanguages(data);
    renderTelegram(data.telegram);
    renderActionAdventure(data.action_adventure);
    const v = data.versions;
    document.body.dataset.version = data.lang ? String(v.twitter_sentiment)
      : [v.twitter_tweets_by_sentiment, v.twitter_tweets_per_hour_by_sentiment].join("/");
    document.body.dataset.lang = data.lang;
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded) + 1);
    const source = data.lang ? "silver version " + v.twitter_sentiment + " (" + data.lang + ")"
      : "gold version " + v.twitter_tweets_by_sentiment;
    status.textContent = data.ready
      ? "updated " + data.read_at.slice(11, 19) + " UTC \\u00b7 " + source
        + " \\u00b7 refreshes every " + REFRESH_MS / 1000 + " s"
      : data.lang ? "no scored tweets in " + data.lang
        : "waiting for gold/twitter_tweets_by_sentiment\\u2026";
  } catch (err) {
    status.textContent = "cannot read the lake: " + err.message;
  }
}

document.getElementById("lang").addEventListener("change", () => {
  // Counts of another language: redraw from scratch (labels may differ).
  document.querySelectorAll("#cards .card.Negative, #cards .card.Neutral, #cards .card.Positive")
    .forEach(card => card.remove());
  refresh();
});
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""


def render_page(refresh_seconds: float) -> str:
    return PAGE.replace("__REFRESH_MS__", str(max(200, int(refresh_seconds * 1000))))
