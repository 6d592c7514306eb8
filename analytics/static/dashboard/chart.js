// Hand-made SVG charts: a line chart with an optional faint previous-period line, and a sparkline.
// Built with DOM calls only (no innerHTML), so nothing a visitor sent can become markup.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function path(values, x, y) {
  let d = "";
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    d += (d ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
  });
  return d;
}

// points: [{label, value, previous?, previousLabel?}]; format(value) -> text.
export function lineChart(container, points, format, options = {}) {
  container.replaceChildren();
  const width = Math.max(container.clientWidth, 280);
  const height = options.height || 240;
  const pad = { left: 48, right: 12, top: 12, bottom: 26 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "line-chart" }, container);
  const values = points.map((p) => p.value);
  const previous = points.map((p) => (p.previous === undefined ? null : p.previous));
  const top = niceMax(Math.max(0, ...values, ...previous.filter((v) => v !== null)));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const x = (i) => pad.left + (points.length > 1 ? (i * innerW) / (points.length - 1) : innerW / 2);
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    el("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }, svg);
    const text = el("text", { x: pad.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, svg);
    text.textContent = format(Math.round(v * 100) / 100);
  }
  const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(innerW / 90))));
  points.forEach((p, i) => {
    if (i % every !== 0) return;
    const text = el("text", { x: x(i), y: height - 6, class: "axis", "text-anchor": "middle" }, svg);
    text.textContent = options.shortLabel ? options.shortLabel(p.label) : p.label;
  });
  if (previous.some((v) => v !== null)) el("path", { d: path(previous, x, y), class: "previous" }, svg);
  const area = path(values, x, y);
  if (area && points.length > 1) {
    el("path", { d: `${area}L${x(points.length - 1)} ${y(0)}L${x(0)} ${y(0)}Z`, class: "area" }, svg);
  }
  el("path", { d: area, class: "current" }, svg);
  if (points.length === 1) el("circle", { cx: x(0), cy: y(values[0]), r: 4, class: "dot" }, svg);

  // Hover: the nearest point's values in a tooltip.
  const marker = el("line", { y1: pad.top, y2: pad.top + innerH, class: "marker", visibility: "hidden" }, svg);
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  container.appendChild(tip);
  svg.addEventListener("pointermove", (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    const i = Math.max(0, Math.min(points.length - 1, Math.round(((px - pad.left) / innerW) * (points.length - 1))));
    marker.setAttribute("x1", x(i));
    marker.setAttribute("x2", x(i));
    marker.setAttribute("visibility", "visible");
    const p = points[i];
    const lines = [`${p.label}: ${format(p.value)}`];
    if (p.previous !== undefined && p.previous !== null) lines.push(`${p.previousLabel || "before"}: ${format(p.previous)}`);
    tip.replaceChildren(...lines.map((line) => Object.assign(document.createElement("div"), { textContent: line })));
    tip.hidden = false;
    tip.style.left = `${Math.min(box.width - 160, Math.max(0, (x(i) / width) * box.width + 8))}px`;
  });
  svg.addEventListener("pointerleave", () => {
    marker.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
}

export function sparkline(container, values) {
  container.replaceChildren();
  const width = 120;
  const height = 32;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "sparkline", "aria-hidden": "true" }, container);
  const top = Math.max(1, ...values);
  const x = (i) => (values.length > 1 ? (i * width) / (values.length - 1) : width / 2);
  const y = (v) => height - 2 - (v / top) * (height - 4);
  el("path", { d: path(values, x, y), class: "current" }, svg);
}
