// The Files view: the file pipeline, read over REST when opened, then kept current by the
// /files/events stream while shown (no polling: a local timer only redraws).
import { authHeaders, getJson, showError } from "./api.js";
import { timeline } from "./charts.js";
import { showLive } from "./livebanner.js";
import { openStream } from "./sse.js";
import { clock, el, number, stateBadge, when } from "./util.js";

const PER_PAGE = 100; // the size of a /files page
const LATEST = 25;
const KEPT = 2 * PER_PAGE; // the newest files kept, as many as a reload reads
const SILENT_S = 20; // a worker unheard of for this long is gone (its heartbeat expired)
const REDRAW_MS = 2000; // running files grow on the timeline, silent workers age out

/** The pipeline as last read and changed by events since. */
let view = { workers: new Map(), files: new Map(), total: 0, done: 0, quarantined: 0, arriving: null };
let stream = null;
let live = false;
let changedAt = null; // when the last reload or event was taken
let redrawTimer = null;
let drawTimer = null;
let loads = 0; // reloads started: only the latest one's answer is taken
let held = null; // events that arrived while a reload was under way, in order

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

/** Workers whose heartbeat is recent, by name. */
function liveWorkers() {
  const now = Date.now() / 1000;
  return [...view.workers.values()].filter((w) => now - w.beat_at < SILENT_S)
    .sort((a, b) => (a.instance < b.instance ? -1 : 1));
}

function draw() {
  const workers = liveWorkers();
  const processing = new Set(workers.map((w) => w.current_file).filter(Boolean));
  const items = [...view.files.values()];
  if (view.arriving) renderArriving(view.arriving);
  renderWorkers(workers);
  renderFiles(items, processing);
  renderTimeline(items);
  document.getElementById("files-counts").replaceChildren(
    `${view.total} file(s) in the ledger: `, el("strong", {}, `${view.done} done`), ", ",
    el("strong", {}, `${view.quarantined} quarantined`), `, ${processing.size} being processed.`);
  document.getElementById("files-updated").textContent = (live ? "live" : "not live")
    + (changedAt ? `, last change ${changedAt.toLocaleTimeString()}` : "");
}

/** Draw once for a burst of events (heartbeats and file changes come in quick runs). */
function drawSoon() {
  if (!drawTimer) drawTimer = setTimeout(() => { drawTimer = null; draw(); }, 100);
}

/** The file workers and the arriving files, as a stream's snapshot gives them. */
async function pipelineNow() {
  const [{ workers }, arriving] = await Promise.all([getJson("/workers"), getJson("/files/arriving")]);
  return { workers, arriving };
}

/** Read the pipeline over REST (the workers and arriving files from ``snapshot`` if given);
 * events arriving meanwhile are held, then applied over the answer, so none is lost. */
async function reload(snapshot) {
  const load = ++loads;
  held = held || [];
  try {
    const [pipeline, newest, done, quarantined] = await Promise.all([
      snapshot || pipelineNow(), newestFiles(), count("done"), count("quarantined")]);
    if (load !== loads) return;
    view = { workers: new Map(pipeline.workers.map((w) => [w.instance, w])),
      files: new Map(newest.items.map((f) => [f.name, f])),
      total: newest.total, done, quarantined, arriving: pipeline.arriving };
    changedAt = new Date();
  } catch (error) {
    if (load !== loads) return;
    showError(error);
  }
  const missed = held;
  held = null;
  for (const [name, data] of missed) apply(name, data);
  draw();
}

/** Take a ledger row's change, counting it by the state it leaves and the one it enters. */
function takeFile(row) {
  const old = view.files.get(row.name);
  if (!old) view.total += 1;
  if (old?.state === "done" || old?.state === "quarantined") view[old.state] -= 1;
  if (row.state === "done" || row.state === "quarantined") view[row.state] += 1;
  view.files.set(row.name, { ...old, ...row }); // events carry no attempts: keep the last read
  const names = [...view.files.keys()].sort();
  for (const name of names.slice(0, Math.max(0, names.length - KEPT))) view.files.delete(name);
}

function apply(name, data) {
  changedAt = new Date();
  if (name === "worker") view.workers.set(data.instance, data);
  else if (name === "worker-gone") view.workers.delete(data.instance);
  else if (name === "file") takeFile(data);
  else if (name === "arriving") view.arriving = data;
}

function onEvent(name, text) {
  const data = JSON.parse(text);
  // a snapshot starts every connection: what changed before it is read again over REST
  if (name === "snapshot") reload(data);
  else if (name === "resync") reload();
  else if (held) held.push([name, data]);
  else { apply(name, data); drawSoon(); }
}

function onStatus(status) {
  live = status.state === "live";
  showLive("files", status);
}

/** Show the pipeline and follow it (again, after a token change) until ``close()``. */
export function open() {
  close();
  // read at once (shown even if the stream is refused); the stream's snapshot reads again,
  // so what changed between this read and the stream's start is not missed
  reload();
  stream = openStream("/files/events", { headers: authHeaders(), onEvent, onStatus });
  redrawTimer = setInterval(draw, REDRAW_MS);
}

export function close() {
  if (stream) stream.close();
  stream = null; live = false; held = null;
  loads += 1; // a reload under way is not drawn
  clearInterval(redrawTimer); clearTimeout(drawTimer);
  drawTimer = null;
  showLive("files", null);
}
