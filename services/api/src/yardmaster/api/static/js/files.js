// The Files view: the file pipeline, polled every 2 s while shown (the API has no file stream).
import { getJson, showError } from "./api.js";
import { timeline } from "./charts.js";
import { clock, el, number, stateBadge, when } from "./util.js";

const EVERY_MS = 2000;
const PER_PAGE = 100; // the size of a /files page
const LATEST = 25;
let timer = null;

/** The ledger's last two pages (file names sort by their slot, so these are the newest). */
async function newestFiles() {
  const first = await getJson("/files");
  const pages = Math.max(1, Math.ceil(first.total / PER_PAGE));
  if (pages === 1) return { total: first.total, items: first.items };
  const wanted = [pages - 1, pages].filter((p) => p > 1);
  const more = await Promise.all(wanted.map((p) => getJson(`/files?page=${p}`)));
  const items = (pages === 2 ? [first] : []).concat(more).flatMap((p) => p.items);
  return { total: first.total, items: [...new Map(items.map((i) => [i.name, i])).values()] };
}

async function count(state) {
  return (await getJson(`/files?state=${state}&page=1000000`)).total;
}

/** The statistics line a worker prints (from its heartbeat), or "" before its first file. */
export function statsLine(worker) {
  if (!worker.files) return "";
  return `Files processed: ${worker.files}, Total Time: ${number(worker.total_time)}, `
    + `Sum of Squares: ${number(worker.sum_of_squares)}`;
}

function renderWorkers(workers) {
  document.querySelector("#workers-table tbody").replaceChildren(...workers.map((w) =>
    el("tr", { "data-worker": w.instance },
      el("td", {}, w.instance),
      el("td", {}, w.state || ""),
      el("td", {}, w.current_file || "—"),
      el("td", { class: "stats" }, statsLine(w) || el("span", { class: "muted" }, "no file done yet")),
      el("td", {}, clock(w.beat_at)))));
  if (!workers.length) {
    document.querySelector("#workers-table tbody").replaceChildren(
      el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No file worker is running.")));
  }
}

function renderFiles(items, processing) {
  const latest = [...items].sort((a, b) => (a.name < b.name ? 1 : -1)).slice(0, LATEST);
  document.querySelector("#files-table tbody").replaceChildren(...latest.map((f) =>
    el("tr", { "data-file": f.name },
      el("td", {}, f.name),
      el("td", {}, stateBadge(processing.has(f.name) && f.state === "loaded" ? "processing" : f.state)),
      el("td", {}, f.worker || ""), el("td", {}, f.minutes === null ? "" : number(f.minutes)), el("td", {}, f.rows),
      el("td", {}, f.attempts ?? "?"), el("td", {}, when(f.started_at)), el("td", {}, when(f.finished_at)),
      el("td", { class: "wrap" }, f.error || ""))));
}

/** Files in the bucket that no worker has loaded yet (claimed ones show under Workers). */
function renderArriving(arriving) {
  const box = document.getElementById("files-arriving");
  if (!arriving.bucket_visible) {
    box.replaceChildren(el("span", { class: "muted" }, "The bucket folder is not visible to the API."));
    return;
  }
  const names = arriving.items.slice(0, 5).map((f) => f.name).join(", ");
  box.replaceChildren(el("strong", {}, `${arriving.total} arriving`),
    arriving.total ? ` (not loaded yet): ${names}${arriving.total > 5 ? ", …" : ""}` : " (none waiting)");
}

function renderTimeline(items) {
  const days = items.map((f) => f.name.slice(0, 10)).sort();
  const day = days[days.length - 1];
  const today = items.filter((f) => f.name.startsWith(day) && f.started_at);
  document.getElementById("timeline-day").textContent = day ? `(simulated day ${day.replaceAll("_", "-")})` : "";
  const box = document.getElementById("timeline");
  if (!today.length) { box.replaceChildren(el("p", { class: "muted" }, "No files yet.")); return; }
  const now = Date.now();
  const byWorker = new Map();
  for (const f of today) {
    const start = Date.parse(f.started_at), end = f.finished_at ? Date.parse(f.finished_at) : now;
    const lane = byWorker.get(f.worker || "?") || [];
    lane.push({ start, end, css: f.state, title: `${f.name}: ${f.state}, ${f.minutes ?? "?"} min` });
    byWorker.set(f.worker || "?", lane);
  }
  const lanes = [...byWorker.entries()].sort().map(([name, spans]) => ({ name, spans }));
  const all = lanes.flatMap((l) => l.spans);
  box.replaceChildren(timeline(lanes, {
    from: Math.min(...all.map((s) => s.start)), till: Math.max(...all.map((s) => s.end)) }));
}

async function refresh() {
  try {
    const [{ workers }, newest, done, quarantined, arriving] = await Promise.all([
      getJson("/workers"), newestFiles(), count("done"), count("quarantined"),
      getJson("/files/arriving")]);
    renderArriving(arriving);
    const processing = new Set(workers.map((w) => w.current_file).filter(Boolean));
    renderWorkers(workers);
    renderFiles(newest.items, processing);
    renderTimeline(newest.items);
    document.getElementById("files-counts").replaceChildren(
      `${newest.total} file(s) in the ledger: `, el("strong", {}, `${done} done`), ", ",
      el("strong", {}, `${quarantined} quarantined`), `, ${processing.size} being processed.`);
    document.getElementById("files-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError(error);
  }
}

export function open() {
  clearInterval(timer);
  refresh();
  timer = setInterval(refresh, EVERY_MS);
}

export function close() { clearInterval(timer); timer = null; }
