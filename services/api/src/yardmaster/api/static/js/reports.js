// The Reports view: trigger, watch, download, and read a report as a table and two charts.
import { postJson, request, showError } from "./api.js";
import { barChart } from "./charts.js";
import { fetchJob, jobs, load, subscribe } from "./store.js";
import { el, stateBadge, when } from "./util.js";

const ROWS_SHOWN = 200;
const TOP = 10;
let watched = null; // the report just triggered: shown once it finishes
let table = { header: [], rows: [], sortBy: null, descending: true };

function reportUrl(id) { return `/get_report?report_id=${encodeURIComponent(id)}`; }

function row(job) {
  const finished = job.state === "finished";
  const fraction = job.progress.fraction;
  return el("tr", { "data-report-id": job.id },
    el("td", {}, el("a", { href: `#jobs/${job.id}`, title: job.id }, el("code", {}, job.id.slice(0, 8)))),
    el("td", {}, stateBadge(job.state)),
    el("td", {}, el("progress", { max: "1", value: fraction === null ? false : String(fraction) }),
      el("span", { class: "progress-message" }, job.error || job.progress.message || "")),
    el("td", {}, when(job.created_at)),
    el("td", {}, when(job.finished_at)),
    el("td", { class: "actions" },
      finished && el("button", { type: "button", onclick: () => show(job.id) }, "Show"),
      finished && el("a", { href: reportUrl(job.id), download: `store-report-${job.id}.csv`, "data-signed": true }, "CSV")));
}

function render() {
  const reports = [...jobs.values()].filter((j) => j.kind === "report")
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, 20);
  document.querySelector("#reports-table tbody").replaceChildren(...reports.map(row));
  if (watched && jobs.get(watched)?.state === "finished") { const id = watched; watched = null; show(id); }
}

/** The CSV's records as arrays of cells (RFC 4180: quoted cells may hold commas, quotes and
 * line breaks). */
export function csvRecords(text) {
  const records = [];
  let record = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') { cell += '"'; i++; }
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ",") { record.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(cell); records.push(record); record = []; cell = "";
    } else cell += c;
  }
  if (cell !== "" || record.length) { record.push(cell); records.push(record); }
  return records;
}

/** A cell as it was before the platform made it spreadsheet-safe: one leading ' goes when a
 * character a spreadsheet evaluates (or another ') follows it (the README's rule). */
export function unescapeCell(cell) {
  return cell[0] === "'" && "=+-@\t\r'".includes(cell[1] ?? "x") ? cell.slice(1) : cell;
}

/** Parse the report's CSV: the header, and rows of the store id (as text) and numbers. */
export function parseCsv(text) {
  const [header, ...rows] = csvRecords(text.trim());
  return {
    header,
    rows: rows.map((cells) => cells.map((cell, i) =>
      (i === 0 ? unescapeCell(cell) : cell === "" || Number.isNaN(Number(cell)) ? cell : Number(cell)))),
  };
}

async function show(id) {
  try {
    const response = await request(reportUrl(id), { accept: "text/csv" });
    const { header, rows } = parseCsv(await response.text());
    table = { header, rows, sortBy: header.indexOf("downtime_last_week"), descending: true };
    document.getElementById("report-id").textContent = id;
    document.getElementById("report-download").href = reportUrl(id); // data-signed: see api.js
    document.getElementById("report-download").setAttribute("download", `store-report-${id}.csv`);
    document.getElementById("report-result").hidden = false;
    charts();
    renderTable();
  } catch (error) { showError(error); }
}

function top(column) {
  const i = table.header.indexOf(column);
  return [...table.rows].sort((a, b) => b[i] - a[i]).slice(0, TOP)
    .map((r) => ({ label: `…${String(r[0]).slice(-6)}`, value: r[i], title: `store ${r[0]}: ${r[i]} h` }));
}

function charts() {
  document.getElementById("chart-day").replaceChildren(barChart(top("downtime_last_day"), { unit: " h", css: "day" }));
  document.getElementById("chart-week").replaceChildren(barChart(top("downtime_last_week"), { unit: " h" }));
}

function renderTable() {
  const { header, rows, sortBy, descending } = table;
  const sorted = sortBy === null || sortBy < 0 ? rows : [...rows].sort((a, b) => {
    const order = a[sortBy] < b[sortBy] ? -1 : a[sortBy] > b[sortBy] ? 1 : 0;
    return descending ? -order : order;
  });
  const head = el("tr", {}, header.map((name, i) => el("th", {
    scope: "col", "aria-sort": i === sortBy ? (descending ? "descending" : "ascending") : false,
    onclick: () => { table.descending = table.sortBy === i ? !table.descending : true; table.sortBy = i; renderTable(); },
  }, name)));
  const grid = document.getElementById("report-rows");
  grid.tHead.replaceChildren(head);
  grid.tBodies[0].replaceChildren(...sorted.slice(0, ROWS_SHOWN).map((r) =>
    el("tr", {}, r.map((cell) => el("td", {}, cell)))));
  document.getElementById("report-summary").textContent = rows.length > ROWS_SHOWN
    ? `${rows.length} stores; the first ${ROWS_SHOWN} in this order are shown (click a column to sort).`
    : `${rows.length} stores (click a column to sort).`;
}

export function open() { load("kind=report").catch(showError); }

export function init() {
  subscribe(render);
  document.getElementById("trigger-report").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const answer = await postJson("/trigger_report");
      watched = answer.report_id;
      await fetchJob(answer.report_id);
    } catch (error) { showError(error); } finally { button.disabled = false; }
  });
}
