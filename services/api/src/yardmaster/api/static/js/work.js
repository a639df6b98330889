// The Work view: sites and customers (admin), and work submitted for a customer.
import { ApiError, access, clearError, getJson, postJson, showError } from "./api.js";
import { jobs, remember, subscribe } from "./store.js";
import { contract, el, stateBadge, visible } from "./util.js";

const LISTED = 200; // the most the API pages at once
let sites = [];
let customers = [];
const submitted = []; // job ids, newest first
let reloadTimer = null;

/** Every error of a problem document (bulk 400s list one per item and field), one a line. */
export function describe(error) {
  const errors = error instanceof ApiError ? error.problem.errors : null;
  if (!Array.isArray(errors) || errors.length < 2) return error;
  const lines = errors.map((e) => (typeof e === "string" ? e
    : `${e.index !== undefined ? `item ${e.index}: ` : ""}${e.field ? `${e.field}: ` : ""}${e.message}`));
  return `${error.problem.title || `HTTP ${error.status}`}:\n${lines.join("\n")}`;
}

function siteName(id) {
  const site = sites.find((s) => s.id === id);
  return site ? `${site.name} (#${id})` : `#${id}`;
}

/** The class a run time falls in, from the bounds the server wrote into the page. */
function classOf(seconds) {
  const limits = contract().scheduling.class_limits;
  const i = limits.findIndex((limit) => seconds <= limit);
  return seconds > 0 && i >= 0 ? { number: i + 1, limit: limits[i] } : null;
}

function renderSites() {
  document.querySelector("#sites-table tbody").replaceChildren(...sites.map((s) =>
    el("tr", { "data-site-id": s.id },
      el("td", {}, String(s.id)), el("td", {}, s.name), el("td", {}, s.domain ?? "—"),
      el("td", {}, String(s.active_records)), el("td", {}, s.volume_tier))));
  const select = document.querySelector("#customer-form select[name=site_id]");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "choose a site"),
    ...sites.map((s) => el("option", { value: String(s.id) }, siteName(s.id))));
  select.value = chosen;
}

function renderCustomers() {
  document.querySelector("#customers-table tbody").replaceChildren(...customers.map((c) =>
    el("tr", { "data-customer-id": c.id },
      el("td", {}, String(c.id)),
      el("td", {}, c.name), el("td", {}, siteName(c.site_id)), el("td", {}, c.volume_tier),
      el("td", {}, c.activity_tier), el("td", {}, String(c.queued_jobs)))));
  const select = document.querySelector("#work-form select[name=customer]");
  const chosen = select.value;
  const mine = access.principal && access.principal !== "admin"; // a customer's token
  select.replaceChildren(el("option", { value: "" }, mine ? `${access.principal} (this token's)` : "none (a platform job)"),
    ...customers.map((c) => el("option", { value: String(c.id) }, `${c.name} (#${c.id})`)));
  select.value = customers.some((c) => String(c.id) === chosen) ? chosen : "";
  showSite();
}

function renderSubmitted() {
  document.querySelector("#work-table tbody").replaceChildren(...submitted.map((id) => {
    const job = jobs.get(id);
    if (!job) return el("tr", {});
    return el("tr", { "data-job-id": id },
      el("td", {}, el("a", { href: `#jobs/${id}`, title: id }, el("code", {}, id.slice(0, 8)))),
      el("td", {}, job.owner ?? "—"),
      el("td", { class: "work-class" }, job.job_class ?? "—"),
      el("td", { class: "work-queue" }, job.queue),
      el("td", { class: "work-priority" }, job.priority ?? "—"),
      el("td", {}, [job.volume_tier, job.activity_tier].filter(Boolean).join(" / ") || "—"),
      el("td", { class: "work-state" }, stateBadge(job.state)));
  }));
}

function showSite() {
  const form = document.getElementById("work-form");
  const customer = customers.find((c) => String(c.id) === form.customer.value);
  form.site.value = customer ? siteName(customer.site_id) : "—";
}

function showClass() {
  const form = document.getElementById("work-form");
  const found = classOf(Number(form.execution_time.value));
  document.getElementById("work-class").textContent = found
    ? `class ${found.number} (up to ${found.limit} s)`
    : `more than 0 and at most ${contract().scheduling.max_execution_time} s`;
}

/** GET a whole listing; a 403 (a customer's token) is a note under the table, not an alarm. */
async function list(path, note) {
  const noteEl = document.getElementById(note);
  noteEl.textContent = "";
  try {
    const page = await getJson(`${path}?per_page=${LISTED}`);
    if (page.total > page.items.length) noteEl.textContent = `The first ${page.items.length} of ${page.total}.`;
    return page.items;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) { noteEl.textContent = error.message; return []; }
    throw error;
  }
}

async function reload() {
  try {
    sites = await list("/sites", "sites-note");
    customers = await list("/customers", "customers-note");
  } catch (error) { showError(error); }
  renderSites();
  renderCustomers();
}

/** Run ``send`` for a form's submit with its button disabled; errors go to the notice. */
function onSubmit(id, send) {
  const form = document.getElementById(id);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try { await send(form); clearError(); } catch (error) { showError(describe(error)); } finally { button.disabled = false; }
  });
}

async function addSite(form) {
  const body = { name: form.name.value };
  if (form.domain.value.trim()) body.domain = form.domain.value;
  await postJson("/sites", body);
  form.reset();
  await reload();
}

async function addCustomer(form) {
  const body = { site_id: Number(form.site_id.value), name: form.name.value };
  if (form.email.value.trim()) body.email = form.email.value;
  const customer = await postJson("/customers", body);
  form.name.value = ""; form.email.value = "";
  await reload();
  document.querySelector("#work-form select[name=customer]").value = String(customer.id);
  showSite();
}

async function submitWork(form) {
  const customer = customers.find((c) => String(c.id) === form.customer.value);
  const item = { execution_time: Number(form.execution_time.value) };
  if (customer) { item.customer = customer.id; item.site = customer.site_id; }
  const count = Math.max(1, Math.floor(Number(form.count.value) || 1));
  const answer = await postJson("/work", Array.from({ length: count }, () => ({ ...item })));
  for (const job of answer.jobs) { remember(job); submitted.unshift(job.id); }
  renderSubmitted();
  if (customer) reload(); // its queued jobs and activity tier changed
}

export function open() { reload(); }

export function init() {
  const form = document.getElementById("work-form");
  form.execution_time.max = String(contract().scheduling.max_execution_time);
  form.customer.addEventListener("change", showSite);
  form.execution_time.addEventListener("input", showClass);
  showClass();
  onSubmit("work-form", submitWork);
  onSubmit("site-form", addSite);
  onSubmit("customer-form", addCustomer);
  subscribe((job) => {
    if (job && !submitted.includes(job.id)) return;
    renderSubmitted();
    // a customer's job ended: its queued jobs and activity tier changed
    const section = document.getElementById("view-work");
    if (job?.customer_id && contract().terminal_states.includes(job.state) && visible(section)) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(reload, 500);
    }
  });
}
