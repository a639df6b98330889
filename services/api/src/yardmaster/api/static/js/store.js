// Every job the page knows, kept current by one EventSource on /jobs/events; views subscribe.
import { getJson, request, withToken } from "./api.js";

export const jobs = new Map();
const histories = new Map();
const listeners = new Set();
const statusListeners = new Set();
let source = null;
let retryTimer = null;

/** Call ``listener(job)`` on every change (``null`` after a reload of many jobs). */
export function subscribe(listener) { listeners.add(listener); }
export function onStatus(listener) { statusListeners.add(listener); }

function notify(job) { for (const listener of listeners) listener(job); }
function status(value) { for (const listener of statusListeners) listener(value); }

/** The job's states as far as the page knows: from its times, then every change seen live. */
export function history(id) { return histories.get(id) || []; }

function fromTimes(job) {
  const entries = [{ state: "queued", at: job.created_at, seen: "created_at" }];
  if (job.started_at) entries.push({ state: "running", at: job.started_at, seen: "started_at" });
  if (job.finished_at) entries.push({ state: job.state, at: job.finished_at, seen: "finished_at" });
  else if (!["queued", "running"].includes(job.state)) {
    entries.push({ state: job.state, at: job.updated_at, seen: "updated_at" });
  }
  return entries;
}

function record(old, job, live) {
  let entries = histories.get(job.id);
  if (!entries) { entries = fromTimes(job); histories.set(job.id, entries); }
  const last = entries[entries.length - 1];
  if (live && (!old || old.state !== job.state) && last.state !== job.state) {
    entries.push({ state: job.state, at: job.updated_at, seen: "live" });
  }
}

/** Take in a job's representation (from an answer or an event); older versions are ignored. */
export function remember(job, live = false) {
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

/** Open (or reopen, after a token change) the live stream of job changes. */
export function connect() {
  if (source) source.close();
  clearTimeout(retryTimer);
  source = new EventSource(withToken("/jobs/events"));
  source.addEventListener("job", (event) => remember(JSON.parse(event.data), true));
  source.onopen = () => { status("live"); load().catch(() => {}); };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      status("off");
      // the server refused the stream (no token, Redis down): find out why, then retry
      load().catch(() => {});
      retryTimer = setTimeout(connect, 5000);
    } else {
      status("reconnecting");
    }
  };
}
