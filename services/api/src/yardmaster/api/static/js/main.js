// The dashboard's entry point: views by the address's hash, access, the token prompt.
import { access, authHeaders, clearError, followSignedLinks, request, setToken, showError, token } from "./api.js";
import * as data from "./data.js";
import * as files from "./files.js";
import * as jobs from "./jobs.js";
import { showLive } from "./livebanner.js";
import { emptyQueue, followQueue } from "./queue.js";
import * as reports from "./reports.js";
import { connect, forget, onStatus } from "./store.js";
import * as work from "./work.js";

const VIEWS = ["jobs", "reports", "data", "files", "work", "queue"];
let queueStream = null;
let declined = false; // the user cancelled the token prompt: do not ask again by itself

function renderQueue(queue) {
  document.getElementById("queue-length").textContent = String(queue.waiting.length);
  document.getElementById("queue-viewer").textContent = queue.viewer
    ? ` (token ${queue.viewer} is looking at its picture)` : "";
}

/** Follow the turn queue while the Queue view is shown (one stream, not polling). */
function watchQueue(shown) {
  if (queueStream) { queueStream.close(); queueStream = null; showLive("queue", null); }
  if (!shown) return;
  const queue = emptyQueue();
  queueStream = followQueue(queue, {
    headers: authHeaders(),
    onChange: () => renderQueue(queue),
    onStatus: (status) => showLive("queue", status),
  });
}

function route() {
  const [name, ...rest] = (location.hash.slice(1) || "jobs").split("/");
  const view = VIEWS.includes(name) ? name : "jobs";
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.dataset.view !== view;
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
    if (link.dataset.view === view) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (view === "files") files.open(); else files.close();
  watchQueue(view === "queue");
  if (view === "reports") reports.open();
  if (view === "work") work.open();
  if (view === "jobs") jobs.route(rest.join("/"));
}

/** Who the API says we are; a 404 (no /whoami yet) counts as an open API. */
async function whoami() {
  try {
    const answer = await (await request("/whoami")).json();
    access.mode = answer.access; access.principal = answer.principal;
  } catch (error) {
    if (error.status !== 404) { showError(error); return; }
    access.mode = "open"; access.principal = null;
  }
  document.getElementById("open-banner").hidden = access.mode !== "open";
  document.getElementById("principal").textContent = access.mode === "open" ? ""
    : access.principal ? `signed in as ${access.principal}` : "no token";
  document.getElementById("token-button").hidden = access.mode === "open" && !token();
}

function askToken(reason) {
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-reason").textContent = reason;
  if (!dialog.open) dialog.showModal();
}

function initToken() {
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save" && form.token.value.trim()) setToken(form.token.value.trim());
    if (dialog.returnValue === "forget") setToken("");
    if (dialog.returnValue === "cancel" && !token()) {
      declined = true;
      showError("This API needs an access token: use the Access token button to enter one.");
    }
    form.token.value = "";
  });
  document.getElementById("token-button").addEventListener("click", () =>
    askToken(token() ? "Replace or forget the access token this browser uses." : "Enter an access token."));
  window.addEventListener("token-needed", (event) => {
    if (declined) return;
    const problem = event.detail || {};
    askToken(token()
      ? `The API refused this browser's token (${problem.detail || problem.title || "401"}). Enter another one.`
      : "This API requires an access token: enter yours.");
  });
  window.addEventListener("token-changed", () => {
    declined = false; clearError(); forget(); whoami(); connect(); route();
  });
}

function init() {
  document.getElementById("notice-close").addEventListener("click", clearError);
  followSignedLinks();
  initToken();
  jobs.init();
  reports.init();
  data.init();
  work.init();
  onStatus((status) => showLive("jobs", status));
  window.addEventListener("hashchange", route);
  route();
  whoami();
  connect();
}

init();
