// Scribe dashboard: charts of the metric history (/history.json) drawn with uPlot (vendor/).
"use strict";

const CHARTS = [
  // [element id, which series, at most how many]
  ["chart-gates", (n) => /^gate\.[^.]+\.(use|waiting)$/.test(n) || n === "gate.db.capacity", 9],
  ["chart-latency", (n) => /^latency\..+\.p99_ms$/.test(n), 8],
  // Counters are kept as per-second rates (<name>.rate).
  ["chart-events", (n) => ["events.published.rate", "feed.delivered.rate", "db.queries.rate", "sessions.started.rate"].includes(n), 4],
  ["chart-failures", (n) => /^latency\..+_source.*\.errors\.rate$/.test(n) || n === "db.errors.rate", 8],
];
const COLORS = ["#2b6cb0", "#c53030", "#1f8f4e", "#b7791f", "#6b46c1", "#2c7a7b", "#d53f8c", "#718096", "#975a16"];

const charts = { range: 3600, plots: new Map(), timer: null };

// One x axis for every series of a chart: the union of their points' start times; each series'
// mean at those times (null where it has no point).
function aligned(series, names) {
  const times = new Set();
  for (const name of names) for (const [t] of series[name] || []) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns = names.map((name) => {
    const column = new Array(xs.length).fill(null);
    for (const [t, mean] of series[name] || []) column[index.get(t)] = mean;
    return column;
  });
  return [xs, ...columns];
}

function drawChart(id, names, data) {
  const figure = $(id);
  const box = figure.querySelector(".plot");
  const key = names.join("|");
  let entry = charts.plots.get(id);
  if (!entry || entry.key !== key) {
    if (entry) entry.plot.destroy();
    box.replaceChildren();
    const opts = {
      width: Math.max(box.clientWidth, 240),
      height: 150,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      // The whole range asked for, whatever part of it has points.
      scales: { x: { time: true, range: () => [Date.now() / 1000 - charts.range, Date.now() / 1000] } },
      series: [{}, ...names.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
      axes: [{}, { size: 48 }],
    };
    entry = { key, plot: new uPlot(opts, data, box) };
    charts.plots.set(id, entry);
  } else {
    entry.plot.setData(data);
  }
  figure.dataset.points = String(data[0].length);
  figure.dataset.series = String(names.length);
  figure.classList.toggle("no-data", data[0].length === 0);
}

async function refreshCharts() {
  clearTimeout(charts.timer);
  charts.timer = setTimeout(refreshCharts, charts.range > 3600 ? 60000 : 10000);
  try {
    const listed = await getJSON("/history.json");
    const all = listed.series_names || [];
    const wanted = CHARTS.map(([id, pick, most]) => [id, all.filter(pick).sort().slice(0, most)]);
    const names = [...new Set(wanted.flatMap(([, n]) => n))];
    let series = {};
    if (names.length) {
      const answer = await getJSON("/history.json", { series: names.join(","), last: charts.range, points: 360 });
      series = answer.series || {};
    }
    for (const [id, picked] of wanted) drawChart(id, picked, aligned(series, picked));
    $("charts-note").textContent = names.length ? "" : "no series recorded yet";
  } catch (err) {
    $("charts-note").textContent = literal(`history: ${err.message}`);
  }
}

function setupCharts() {
  for (const button of document.querySelectorAll("#chart-range [data-range]")) {
    button.addEventListener("click", () => {
      charts.range = Number(button.dataset.range);
      for (const b of document.querySelectorAll("#chart-range [data-range]")) b.classList.toggle("active", b === button);
      refreshCharts();
    });
  }
  window.addEventListener("resize", () => {
    for (const [id, entry] of charts.plots) {
      const box = $(id).querySelector(".plot");
      entry.plot.setSize({ width: Math.max(box.clientWidth, 240), height: 150 });
    }
  });
  refreshCharts();
}
