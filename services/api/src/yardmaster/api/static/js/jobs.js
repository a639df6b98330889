// The Jobs view: a live table with filters and controls, and one job's detail.
import { showError } from "./api.js";
import { control, fetchJob, history, jobs, load, onStatus, subscribe } from "./store.js";
import { contract, el, stateBadge, when } from "./util.js";

const SHOWN = 100;
const LABELS = { pause: "Pause", resume: "Resume", stop: "Stop" };
/** The heading's badge for each state of the live stream (the live banner says why). */
const BADGES = { live: "live", reconnecting: "reconnecting…", busy: "busy", refused: "not live" };
const filters = { state: "", kind: "", owner: "" };
let detailId = null;
let detailState = null;
let pending = false;

function matches(job) {
  return (!filters.state || job.state === filters.state)
    && (!filters.kind || job.kind === filters.kind)
    && (!filters.owner || job.owner === filters.owner);
}

/** Pause/resume/stop buttons, enabled as the job's state allows, and its result link. */
export function actions(job) {
  const cell = el("div", { class: "actions" });
  for (const action of contract().actions) {
    const allowed = job.allowed_actions.includes(action);
    cell.append(el("button", {
      type: "button", disabled: !allowed, "data-action": action,
      title: allowed ? `${action} this job` : `a ${job.state} job cannot ${action}`,
      onclick: (event) => act(job.id, action, event.currentTarget),
    }, LABELS[action] || action));
  }
  if (job.result && job.state === "finished") {
    cell.append(el("a", { href: job.links.result, download: job.result.name || "", "data-signed": true }, "Result"));
  }
  return cell;
}

async function act(id, action, button) {
  button.disabled = true;
  try { await control(id, action); } catch (error) { showError(error); render(); }
}

function progress(job) {
  const fraction = job.progress.fraction;
  return el("td", {},
    el("progress", { max: "1", value: fraction === null ? false : String(fraction),
      "aria-label": "progress" }),
    el("span", { class: "progress-message" }, job.progress.message || (fraction === null ? "" : `${Math.round(fraction * 100)}%`)));
}

const COLUMNS = ["Job", "Kind", "Owner", "State", "Progress", "Queue / priority", "Created",
  "Started", "Finished", "Actions"];

function row(job) {
  const cells = [
    el("td", {}, el("a", { href: `#jobs/${job.id}`, title: job.id }, el("code", {}, job.id.slice(0, 8)))),
    el("td", {}, job.kind),
    el("td", {}, job.owner ?? "—"),
    el("td", { class: "job-state" }, stateBadge(job.state)),
    progress(job),
    el("td", {}, `${job.queue}${job.priority !== null && job.priority !== undefined ? " / " + job.priority : ""}`),
    el("td", {}, when(job.created_at)),
    el("td", {}, when(job.started_at)),
    el("td", {}, when(job.finished_at)),
    el("td", {}, actions(job)),
  ];
  cells.forEach((cell, i) => cell.setAttribute("data-label", COLUMNS[i])); // card layout on phones
  return el("tr", { "data-job-id": job.id, class: job.id === detailId ? "selected" : "" }, cells);
}

function render() {
  pending = false;
  const shown = [...jobs.values()].filter(matches)
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, SHOWN);
  document.querySelector("#jobs-table tbody").replaceChildren(...shown.map(row));
  document.getElementById("jobs-count").textContent = shown.length
    ? `${shown.length} job(s) shown, newest first.` : "No jobs match.";
  renderDetail();
}

function soon() {
  if (!pending) { pending = true; requestAnimationFrame(render); }
}

function renderDetail() {
  const panel = document.getElementById("job-detail");
  const job = detailId && jobs.get(detailId);
  panel.hidden = !job;
  if (!job) return;
  document.getElementById("detail-id").textContent = job.id;
  document.getElementById("detail-actions").replaceChildren(actions(job));
  const fields = [
    ["kind", job.kind], ["state", stateBadge(job.state)], ["owner", job.owner ?? "—"],
    ["site", job.site ?? "—"], ["queue", job.queue], ["priority", job.priority ?? "—"],
    ["class", job.job_class ?? "—"], ["progress", job.progress.message || String(job.progress.fraction ?? "")],
    ["parameters", JSON.stringify(job.params)], ["attempt", `${job.attempt} of ${job.max_attempts}`],
    ["error", job.error ? el("span", { class: "error-text" }, job.error) : "—"],
    ["created", when(job.created_at)], ["started", when(job.started_at)],
    ["finished", when(job.finished_at)], ["updated", when(job.updated_at)],
  ];
  document.getElementById("detail-fields").replaceChildren(
    ...fields.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  document.querySelector("#detail-history tbody").replaceChildren(...history(job.id).map((e) =>
    el("tr", {}, el("td", {}, stateBadge(e.state)), el("td", {}, e.from ? stateBadge(e.from) : "—"),
      el("td", {}, when(e.at)),
      el("td", { class: e.seen === "live" ? "muted" : "" },
        e.seen === "live" ? "seen live" : e.reason ?? "—"))));
}

/** When the open job changes state, fetch it again: the server's history says why. */
function followDetail(job) {
  if (!job || job.id !== detailId) return;
  if (detailState !== null && detailState !== job.state) fetchJob(job.id).catch(() => {});
  detailState = job.state;
}

/** Show the job whose id follows "#jobs/" in the address (or none). */
export async function route(rest) {
  detailId = rest || null;
  detailState = null;
  if (detailId) {  // always: the listing and the events carry no history
    try { detailState = (await fetchJob(detailId)).state; } catch (error) { showError(error); }
  }
  render();
  if (detailId) document.getElementById("job-detail").scrollIntoView({ block: "nearest" });
}

function query() {
  return Object.entries(filters).filter(([, v]) => v)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
}

export function init() {
  const form = document.getElementById("job-filters");
  const { states, kinds } = contract();
  form.state.append(...states.map((s) => el("option", { value: s }, s)));
  form.kind.append(...kinds.map((k) => el("option", { value: k }, k)));
  form.addEventListener("input", () => {
    filters.state = form.state.value; filters.kind = form.kind.value; filters.owner = form.owner.value.trim();
    render();
    load(query()).catch(showError);
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  subscribe(soon);
  subscribe(followDetail);
  const live = document.getElementById("jobs-live");
  onStatus(({ state }) => {
    if (state === "live" && query()) load(query()).catch(showError); // what the stream missed
    live.className = `live ${state === "live" ? "on" : state === "reconnecting" ? "" : "off"}`;
    live.textContent = BADGES[state];
  });
}
