// Every job the page knows, kept current by one stream of /jobs/events; views subscribe.
import { authHeaders, getJson, request } from "./api.js";
import { openStream } from "./sse.js";

export const jobs = new Map();
const histories = new Map();
const listeners = new Set();
const statusListeners = new Set();
let stream = null;

/** Call ``listener(job)`` on every change (``null`` after a reload of many jobs). */
export function subscribe(listener) { listeners.add(listener); }
export function onStatus(listener) { statusListeners.add(listener); }

function notify(job) { for (const listener of listeners) listener(job); }
function status(value) { for (const listener of statusListeners) listener(value); }

/** The job's states, oldest first: its history from the server (``GET /jobs/<id>``), then
 * every change seen live since (``seen: "live"``). Empty until the job has been fetched. */
export function history(id) { return histories.get(id) || []; }

/** Take the server's history; live entries newer than its last one stay (no state twice). */
function fromServer(job) {
  const entries = job.history.map((entry) => ({ ...entry, seen: "server" }));
  const last = entries[entries.length - 1];
  for (const entry of histories.get(job.id) || []) {
    const previous = entries[entries.length - 1];
    const newer = !last || Date.parse(entry.at) > Date.parse(last.at);
    if (entry.seen === "live" && newer && previous?.state !== entry.state) {
      entries.push(entry);
    }
  }
  histories.set(job.id, entries);
}

function record(old, job, live) {
  const entries = histories.get(job.id);
  if (!live || !entries) return;
  const last = entries[entries.length - 1];
  if ((!old || old.state !== job.state) && last?.state !== job.state) {
    entries.push({ state: job.state, from: last?.state ?? null, at: job.updated_at, reason: null, seen: "live" });
  }
}

/** Take in a job's representation (from an answer or an event); older versions are ignored. */
export function remember(job, live = false) {
  if (Array.isArray(job.history)) fromServer(job);
  const old = jobs.get(job.id);
  if (old && (job.state_version < old.state_version
      || (job.state_version === old.state_version && job.updated_at < old.updated_at))) return old;
  record(old, job, live);
  jobs.set(job.id, job);
  notify(job);
  return job;
}

/** Forget every job (another token may see other jobs). */
export function forget() {
  jobs.clear();
  histories.clear();
  notify(null);
}

/** Fetch a listing (``query`` like "kind=report") into the store. */
export async function load(query = "") {
  const page = await getJson(`/jobs?per_page=100${query ? "&" + query : ""}`);
  for (const job of page.items) remember(job);
  notify(null);
  return page;
}

export async function fetchJob(id) { return remember(await getJson(`/jobs/${encodeURIComponent(id)}`)); }

/** Pause, resume or stop; the answer is the job as it is now. */
export async function control(id, action) {
  const response = await request(`/jobs/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  return remember(await response.json(), true);
}

/** Open (or reopen, after a token change) the live stream of job changes. Statuses are
 * sse.js's ({state: "live" | "reconnecting" | "busy" | "refused", ...}). */
export function connect() {
  if (stream) stream.close();
  let seen = false; // whether this stream has delivered a job (then the server resumes it)
  stream = openStream("/jobs/events", {
    headers: authHeaders(),
    onEvent(name, data) {
      if (name === "job") { seen = true; remember(JSON.parse(data), true); }
      if (name === "resync") load().catch(() => {}); // the server lost track: what we missed
    },
    onStatus(value) {
      // the list is loaded on the first connection; a resumed one gets what it missed
      if (value.state === "live" && !seen) load().catch(() => {});
      // why it was refused (a missing token brings up the prompt)
      if (value.state === "refused") load().catch(() => {});
      status(value);
    },
  });
}
