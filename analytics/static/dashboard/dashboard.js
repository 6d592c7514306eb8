// The site dashboard: reads its state from the URL, asks the Stats API, draws tiles, chart and panels.
// Every value that came from a visitor is put on the page with textContent, never as markup.

import { lineChart } from "./chart.js";
import { countryName, drawMap } from "./map.js";

const root = document.getElementById("dash");
const SITE = root.dataset.site;
const API = root.dataset.api;
const REALTIME = root.dataset.realtime;
const TODAY = root.dataset.today;
const CSRF = document.querySelector('meta[name="csrf"]')?.content || "";
const GOALS = JSON.parse(root.dataset.goals || "[]");

const number = new Intl.NumberFormat("en");
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const fmt = (v) => (Math.abs(v) >= 10000 ? compact.format(v) : number.format(v));
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

const METRICS = [
  { key: "visitors", label: "Unique visitors", format: fmt },
  { key: "visits", label: "Total visits", format: fmt },
  { key: "pageviews", label: "Total pageviews", format: fmt },
  { key: "views_per_visit", label: "Views per visit", format: (v) => Number(v).toFixed(2) },
  { key: "bounce_rate", label: "Bounce rate", format: (v) => `${v}%`, lowerIsBetter: true },
  { key: "visit_duration", label: "Visit duration", format: duration },
];

export const NAMES = {
  "visit:source": "Source",
  "visit:referrer": "Referrer",
  "visit:utm_medium": "UTM medium",
  "visit:utm_source": "UTM source",
  "visit:utm_campaign": "UTM campaign",
  "visit:utm_content": "UTM content",
  "visit:utm_term": "UTM term",
  "event:page": "Page",
  "visit:entry_page": "Entry page",
  "visit:exit_page": "Exit page",
  "visit:country": "Country",
  "visit:region": "Region",
  "visit:city": "City",
  "visit:browser": "Browser",
  "visit:browser_version": "Browser version",
  "visit:os": "Operating system",
  "visit:os_version": "OS version",
  "visit:device": "Device",
  "visit:screen": "Screen",
  "event:goal": "Goal",
};
const nameOf = (dim) => NAMES[dim] || (dim.startsWith("event:props:") ? `Property ${dim.slice(12)}` : dim);

const SHORTCUTS = {
  r: "realtime", d: "day", e: "yesterday", h: "24h", w: "7d", f: "28d", t: "30d",
  m: "month", n: "lastmonth", s: "6mo", l: "12mo", y: "year", a: "all", c: "custom",
};
const RANGES = new Set(Object.values(SHORTCUTS));
const DEFAULT_RANGE = "30d";

// State <-> URL: ?range=7d&filter=visit:source&value=Google&compare=1&metric=pageviews&tabs=...
function readState() {
  const q = new URLSearchParams(location.search);
  const range = RANGES.has(q.get("range")) ? q.get("range") : DEFAULT_RANGE;
  const filter = q.get("filter") && q.has("value") ? [q.get("filter"), q.get("value")] : null;
  const metric = METRICS.some((m) => m.key === q.get("metric")) ? q.get("metric") : "visitors";
  return { range, from: q.get("from") || "", to: q.get("to") || "", filter, compare: q.get("compare") === "1", metric };
}

function writeState(next, replace = false) {
  const q = new URLSearchParams();
  if (next.range !== DEFAULT_RANGE) q.set("range", next.range);
  if (next.range === "custom") {
    q.set("from", next.from);
    q.set("to", next.to);
  }
  if (next.filter) {
    q.set("filter", next.filter[0]);
    q.set("value", next.filter[1]);
  }
  if (next.compare) q.set("compare", "1");
  if (next.metric !== "visitors") q.set("metric", next.metric);
  const url = `${location.pathname}${q.toString() ? `?${q}` : ""}`;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
}

let state = readState();
let generation = 0; // answers of an older state are dropped

const iso = (d) => d.toISOString().slice(0, 10);
function localToday() {
  return new Date(`${TODAY}T00:00:00Z`);
}
function addDays(d, n) {
  const copy = new Date(d);
  copy.setUTCDate(copy.getUTCDate() + n);
  return copy;
}

function dateRange() {
  const today = localToday();
  if (state.range === "yesterday") return [iso(addDays(today, -1)), iso(addDays(today, -1))];
  if (state.range === "lastmonth") {
    const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1));
    const last = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 0));
    return [iso(first), iso(last)];
  }
  if (state.range === "custom") return [state.from || TODAY, state.to || TODAY];
  return state.range;
}

function interval() {
  if (["day", "yesterday", "24h"].includes(state.range)) return "time:hour";
  if (["6mo", "12mo", "year"].includes(state.range)) return "time:week";
  if (state.range === "all") return "time:month";
  if (state.range === "custom") {
    const days = (new Date(state.to) - new Date(state.from)) / 86400000;
    if (days <= 1) return "time:hour";
    if (days <= 92) return "time:day";
    return days <= 400 ? "time:week" : "time:month";
  }
  return "time:day";
}

class ApiError extends Error {}

async function ask(body) {
  const response = await fetch(API, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    credentials: "same-origin",
    body: JSON.stringify({ site_id: SITE, date_range: dateRange(), ...body }),
  });
  const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!response.ok) throw new ApiError(data.error || `the server answered ${response.status}`);
  return data;
}

function filters() {
  return state.filter ? [["is", state.filter[0], [state.filter[1]]]] : [];
}

function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

// Tiles

async function drawTiles(current) {
  const tiles = document.getElementById("tiles");
  const answer = await ask({
    metrics: METRICS.map((m) => m.key),
    filters: filters(),
    include: { comparisons: { mode: "previous_period" } },
  });
  if (current !== generation) return;
  const row = answer.results[0] || { metrics: METRICS.map(() => 0) };
  tiles.replaceChildren(
    ...METRICS.map((metric, i) => {
      const tile = node("button", `tile${state.metric === metric.key ? " selected" : ""}`);
      tile.type = "button";
      tile.setAttribute("role", "tab");
      tile.setAttribute("aria-selected", String(state.metric === metric.key));
      tile.dataset.metric = metric.key;
      tile.append(node("span", "label", metric.label), node("span", "value", metric.format(row.metrics[i])));
      const change = row.comparison ? row.comparison.change[i] : null;
      if (change !== null && change !== undefined) {
        const good = metric.lowerIsBetter ? change < 0 : change > 0;
        const unit = ["bounce_rate"].includes(metric.key) ? " pts" : "%";
        const arrow = change > 0 ? "↑" : change < 0 ? "↓" : "";
        tile.append(node("span", `change ${change === 0 ? "" : good ? "up" : "down"}`, `${arrow} ${Math.abs(change)}${unit}`));
      }
      tile.addEventListener("click", () => {
        state.metric = metric.key;
        writeState(state);
        for (const other of tiles.children) {
          other.classList.toggle("selected", other === tile);
          other.setAttribute("aria-selected", String(other === tile));
        }
        drawChart(generation).catch(showError);
      });
      return tile;
    }),
  );
}

// Main chart

function shortLabel(label) {
  if (label.length > 10) return label.slice(11, 16); // hours: "2026-03-10 14:00:00" -> "14:00"
  const d = new Date(`${label}T00:00:00Z`);
  return d.toLocaleDateString("en", { month: "short", day: "numeric", timeZone: "UTC" });
}

async function drawChart(current) {
  const metric = METRICS.find((m) => m.key === state.metric);
  const body = { metrics: [metric.key], dimensions: [interval()], filters: filters() };
  if (state.compare) body.include = { comparisons: { mode: "previous_period" } };
  const answer = await ask(body);
  if (current !== generation) return;
  const points = answer.results.map((r) => ({
    label: r.dimensions[0],
    value: r.metrics[0],
    previous: r.comparison ? r.comparison.metrics[0] : undefined,
    previousLabel: r.comparison ? r.comparison.dimensions[0] : undefined,
  }));
  const chart = document.getElementById("chart");
  chart.setAttribute("aria-label", `${metric.label} by ${interval().slice(5)}`);
  lineChart(chart, points, metric.format, { shortLabel });
}

// Panels

const panelTabs = new Map(); // panel name -> dimension shown

function panelMetrics(dim) {
  if (dim === "event:goal") return ["visitors", "events", "conversion_rate"];
  return dim.startsWith("event:props:") ? ["visitors", "events"] : ["visitors"];
}

// Configured goals first (those without conversions too), then the other custom events.
function goalsFirst(rows) {
  const byName = new Map(rows.map((r) => [r.dimensions[0], r]));
  const goals = GOALS.map((name) => byName.get(name) || { dimensions: [name], metrics: [0, 0, 0], goal: true });
  for (const goal of goals) goal.goal = true;
  return [...goals, ...rows.filter((r) => !GOALS.includes(r.dimensions[0]))];
}

function setFilter(dim, value) {
  if (state.range === "realtime") state.range = DEFAULT_RANGE;
  state.filter = [dim, value];
  writeState(state);
  render();
}

const OTHER = "(other)";

function label(dim, value) {
  if (!value) return dim === "visit:source" ? "Direct / none" : "(none)";
  return dim === "visit:country" ? countryName(value) : value;
}

function rowItem(dim, row, max, metrics) {
  const value = row.dimensions[0];
  const li = node("li");
  const button = node("button", "row");
  button.type = "button";
  button.title = `Filter by ${nameOf(dim)}: ${value || "(none)"}`;
  const bar = node("span", "bar");
  bar.style.width = `${max ? (100 * row.metrics[0]) / max : 0}%`;
  button.append(bar, node("span", "name", label(dim, value)));
  if (row.goal) button.append(node("span", "tag", "goal"));
  const counts = node("span", "count", fmt(row.metrics[0]));
  button.append(counts);
  if (metrics.includes("conversion_rate")) button.append(node("span", "count muted", `${row.metrics[2]}%`));
  const filtered = state.filter && state.filter[0] === dim && state.filter[1] === value;
  if (value === OTHER) {
    // Values too rare to be shown one by one (privacy.min_visitors): they cannot be filtered on either.
    button.title = "Values each seen by too few visitors to be listed (or filtered on) one by one";
    button.disabled = true;
  } else if (!filtered) button.addEventListener("click", () => setFilter(dim, value));
  else button.disabled = true;
  li.append(button);
  return li;
}

async function drawPanel(panel, current) {
  const name = panel.dataset.panel;
  const dim = panelTabs.get(name);
  for (const tab of panel.querySelectorAll(".tabs button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.dim === dim));
  }
  const list = panel.querySelector(".rows");
  const map = panel.querySelector(".map");
  const showMap = dim === "map";
  if (map) map.hidden = !showMap;
  const asked = showMap ? "visit:country" : dim;
  list.hidden = showMap;
  panel.classList.add("loading");
  try {
    const metrics = panelMetrics(asked);
    const answer = await ask({
      metrics,
      dimensions: [asked],
      filters: filters(),
      pagination: { limit: showMap ? 300 : 9 },
    });
    if (current !== generation) return;
    panel.classList.remove("loading");
    const rows = asked === "event:goal" ? goalsFirst(answer.results) : answer.results;
    if (showMap) {
      drawMap(map, rows, (code) => setFilter("visit:country", code), fmt);
      panel.querySelector(".more").hidden = rows.length === 0;
      return;
    }
    const max = Math.max(0, ...rows.map((r) => r.metrics[0]));
    list.replaceChildren(...rows.map((r) => rowItem(asked, r, max, metrics)));
    if (!rows.length) list.replaceChildren(node("li", "msg", "Nothing in this period."));
    panel.querySelector(".more").hidden = rows.length < 9;
  } catch (error) {
    if (current !== generation) return;
    panel.classList.remove("loading");
    list.hidden = false;
    if (map) map.hidden = true;
    list.replaceChildren(node("li", "msg", error instanceof ApiError ? error.message : "Could not load this list."));
    panel.querySelector(".more").hidden = true;
  }
}

function setupPanels() {
  for (const panel of document.querySelectorAll(".panel")) {
    const first = panel.querySelector(".tabs button");
    panelTabs.set(panel.dataset.panel, first.dataset.dim);
    for (const tab of panel.querySelectorAll(".tabs button")) {
      tab.type = "button";
      tab.setAttribute("role", "tab");
      tab.addEventListener("click", () => {
        panelTabs.set(panel.dataset.panel, tab.dataset.dim);
        drawPanel(panel, generation);
      });
    }
    panel.querySelector(".more").addEventListener("click", () => openDetails(panelTabs.get(panel.dataset.panel)));
  }
}

// Details: the full list, searchable and paginated

const PAGE = 50;
let details = { rows: [], dim: "", page: 0, metrics: [] };

async function openDetails(dim) {
  if (dim === "map") dim = "visit:country";
  const dialog = document.getElementById("details");
  const metrics = dim.startsWith("event:") ? panelMetrics(dim) : ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"];
  document.getElementById("details-title").textContent = nameOf(dim);
  document.getElementById("search").value = "";
  dialog.querySelector("tbody").replaceChildren(node("tr", "", "Loading…"));
  if (!dialog.open) dialog.showModal();
  try {
    const answer = await ask({ metrics, dimensions: [dim], filters: filters(), pagination: { limit: 10000 } });
    details = { rows: answer.results, dim, page: 0, metrics };
  } catch (error) {
    details = { rows: [], dim, page: 0, metrics };
    dialog.querySelector("tbody").replaceChildren(node("tr", "msg", error.message));
    return;
  }
  drawDetails();
}

function drawDetails() {
  const dialog = document.getElementById("details");
  const needle = document.getElementById("search").value.trim().toLowerCase();
  const matches = (r) => label(details.dim, r.dimensions[0]).toLowerCase().includes(needle);
  const rows = needle ? details.rows.filter(matches) : details.rows;
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  details.page = Math.min(details.page, pages - 1);
  const head = node("tr");
  head.append(node("th", "", nameOf(details.dim)));
  const titles = { visitors: "Visitors", visits: "Visits", pageviews: "Pageviews", bounce_rate: "Bounce rate", visit_duration: "Visit duration", events: "Events", conversion_rate: "Conversion rate" };
  for (const m of details.metrics) head.append(node("th", "num", titles[m]));
  dialog.querySelector("thead").replaceChildren(head);
  const shown = rows.slice(details.page * PAGE, (details.page + 1) * PAGE);
  dialog.querySelector("tbody").replaceChildren(
    ...shown.map((r) => {
      const tr = node("tr");
      const cell = node("td");
      const button = node("button", "link", label(details.dim, r.dimensions[0]));
      button.type = "button";
      button.addEventListener("click", () => {
        dialog.close();
        setFilter(details.dim, r.dimensions[0]);
      });
      cell.append(button);
      tr.append(cell);
      details.metrics.forEach((m, i) => {
        const v = r.metrics[i];
        const text = m === "visit_duration" ? duration(v) : m.endsWith("rate") ? `${v}%` : fmt(v);
        tr.append(node("td", "num", text));
      });
      return tr;
    }),
  );
  if (!shown.length) dialog.querySelector("tbody").replaceChildren(node("tr", "msg", "No match."));
  document.getElementById("page").textContent = `${details.page + 1} / ${pages} (${number.format(rows.length)} rows)`;
  document.getElementById("prev").disabled = details.page === 0;
  document.getElementById("next").disabled = details.page >= pages - 1;
}

function setupDetails() {
  const dialog = document.getElementById("details");
  dialog.querySelector(".close").addEventListener("click", () => dialog.close());
  document.getElementById("search").addEventListener("input", () => {
    details.page = 0;
    drawDetails();
  });
  document.getElementById("prev").addEventListener("click", () => {
    details.page -= 1;
    drawDetails();
  });
  document.getElementById("next").addEventListener("click", () => {
    details.page += 1;
    drawDetails();
  });
}

// Filters, range, comparison

function drawChips() {
  const chips = document.getElementById("chips");
  chips.replaceChildren();
  if (!state.filter) return;
  const [dim, value] = state.filter;
  const chip = node("span", "chip");
  chip.append(node("span", "", `${nameOf(dim)} is `), node("b", "", label(dim, value)));
  const remove = node("button", "remove", "×");
  remove.type = "button";
  remove.setAttribute("aria-label", "Remove the filter");
  remove.addEventListener("click", () => {
    state.filter = null;
    writeState(state);
    render();
  });
  chip.append(remove);
  chips.append(chip);
}

function setupControls() {
  const range = document.getElementById("range");
  const compare = document.getElementById("compare");
  const custom = document.getElementById("custom");
  range.addEventListener("change", () => {
    if (range.value === "custom") {
      custom.hidden = false;
      document.getElementById("from").value = state.from || iso(addDays(localToday(), -29));
      document.getElementById("to").value = state.to || TODAY;
      document.getElementById("from").focus();
      return;
    }
    setRange(range.value);
  });
  document.getElementById("apply").addEventListener("click", () => {
    const from = document.getElementById("from").value;
    const to = document.getElementById("to").value;
    if (!from || !to || from > to) {
      showNotice("Choose a start date on or before the end date.");
      return;
    }
    state.from = from;
    state.to = to;
    setRange("custom");
  });
  compare.addEventListener("change", () => {
    state.compare = compare.checked;
    writeState(state);
    drawChart(generation).catch(showError);
  });
  document.getElementById("live").addEventListener("click", () => setRange("realtime"));
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target instanceof Element && event.target.closest("input, select, textarea, dialog")) return;
    const key = event.key.toLowerCase();
    if (key === "x") {
      compare.checked = !compare.checked;
      compare.dispatchEvent(new Event("change"));
    } else if (key === "escape" && state.filter) {
      state.filter = null;
      writeState(state);
      render();
    } else if (SHORTCUTS[key]) {
      range.value = SHORTCUTS[key];
      range.dispatchEvent(new Event("change"));
    }
  });
  window.addEventListener("popstate", () => {
    state = readState();
    render();
  });
}

function setRange(value) {
  state.range = value;
  document.getElementById("custom").hidden = value !== "custom";
  writeState(state);
  render();
}

function showNotice(text) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.hidden = !text;
}

function showError(error) {
  showNotice(error instanceof ApiError ? error.message : "The server could not be reached; the figures may be out of date.");
}

// Current visitors (and the realtime view)

async function refreshCurrent() {
  try {
    const url = `${REALTIME}?site_id=${encodeURIComponent(SITE)}`;
    const response = await fetch(url, { headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" });
    if (!response.ok) return;
    const count = await response.json();
    document.getElementById("current").textContent = number.format(count);
    document.getElementById("current-label").textContent = count === 1 ? "current visitor" : "current visitors";
    document.getElementById("rt-count").textContent = number.format(count);
    document.getElementById("rt-label").textContent = count === 1 ? "visitor" : "visitors";
  } catch {
    // offline for a moment: the next refresh tries again
  }
}

let realtimeTimer = null;

function render() {
  generation += 1;
  const current = generation;
  showNotice("");
  const realtime = state.range === "realtime";
  document.getElementById("range").value = state.range;
  document.getElementById("custom").hidden = state.range !== "custom";
  document.getElementById("compare").checked = state.compare;
  document.getElementById("overview").hidden = realtime;
  document.getElementById("realtime-view").hidden = !realtime;
  document.getElementById("compare-toggle").hidden = realtime;
  drawChips();
  clearInterval(realtimeTimer);
  const drawing = [];
  if (realtime) {
    realtimeTimer = setInterval(() => {
      refreshCurrent();
      for (const panel of document.querySelectorAll(".panel")) drawPanel(panel, generation);
    }, 10000);
  } else {
    drawing.push(drawTiles(current).catch(showError), drawChart(current).catch(showError));
  }
  for (const panel of document.querySelectorAll(".panel")) drawing.push(drawPanel(panel, current));
  Promise.all(drawing).then(() => {
    if (current !== generation) return;
    performance.mark(`dashboard-ready-${current}`); // what bench/dashboard.py times
    document.body.dataset.ready = String(current);
  });
}

setupPanels();
setupDetails();
setupControls();
writeState(state, true);
render();
refreshCurrent();
setInterval(refreshCurrent, 30000);
