// Charts drawn as SVG by hand: horizontal bars, and a timeline of lanes.
import { number, svg } from "./util.js";

/** Horizontal bars for ``items`` = [{label, value, title}], largest first. */
export function barChart(items, { unit = "", css = "" } = {}) {
  const rowHeight = 22, labelWidth = 90, valueWidth = 60, width = 420;
  const height = Math.max(1, items.length) * rowHeight + 4;
  const max = Math.max(...items.map((i) => i.value), 0) || 1;
  const room = width - labelWidth - valueWidth;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": `bar chart of ${items.length} items` });
  if (!items.length) chart.append(svg("text", { x: 4, y: 15 }, "nothing to show"));
  items.forEach((item, i) => {
    const y = i * rowHeight + 2;
    const length = Math.max(1, (item.value / max) * room);
    chart.append(svg("g", {},
      svg("title", {}, item.title || `${item.label}: ${item.value}${unit}`),
      svg("text", { x: labelWidth - 6, y: y + 14, "text-anchor": "end" }, item.label),
      svg("rect", { class: `bar ${css}`, x: labelWidth, y: y + 2, width: length, height: rowHeight - 6, rx: 2 }),
      svg("text", { x: labelWidth + length + 4, y: y + 14 }, `${item.value}${unit}`)));
  });
  return chart;
}

/** Lanes of spans: ``lanes`` = [{name, spans: [{start, end, css, title}]}] with times in ms. */
export function timeline(lanes, { from, till }) {
  const laneHeight = 24, labelWidth = 110, width = 900, axis = 18;
  const height = lanes.length * laneHeight + axis + 4;
  const span = Math.max(1, till - from);
  const x = (t) => labelWidth + ((t - from) / span) * (width - labelWidth - 8);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "aria-label": `timeline of ${lanes.length} workers` });
  for (let tick = 0; tick <= 4; tick++) {
    const t = from + (span * tick) / 4;
    chart.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: 0, y2: height - axis }),
      svg("text", { x: x(t), y: height - 4, "text-anchor": tick === 0 ? "start" : tick === 4 ? "end" : "middle" },
        tick === 0 ? new Date(t).toLocaleTimeString() : `+${number((t - from) / 1000)} s`));
  }
  lanes.forEach((lane, i) => {
    const y = i * laneHeight + 2;
    chart.append(svg("text", { x: 4, y: y + 15 }, lane.name));
    for (const s of lane.spans) {
      chart.append(svg("rect", { class: `file ${s.css}`, x: x(s.start), y: y + 3,
        width: Math.max(2, x(s.end) - x(s.start)), height: laneHeight - 8, rx: 2 },
      svg("title", {}, s.title)));
    }
  });
  return chart;
}
