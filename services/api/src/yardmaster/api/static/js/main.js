// The dashboard's entry point: views by the address's hash, access, the token prompt.
import { access, clearError, getJson, request, setToken, showError, token } from "./api.js";
import * as data from "./data.js";
import * as files from "./files.js";
import * as jobs from "./jobs.js";
import * as reports from "./reports.js";
import { connect, forget } from "./store.js";
import * as work from "./work.js";

const VIEWS = ["jobs", "reports", "data", "files", "work", "queue"];
let queueTimer = null;
let declined = false; // the user cancelled the token prompt: do not ask again by itself

async function refreshQueue() {
  try {
    const snapshot = await getJson("/queue");
    document.getElementById("queue-length").textContent = String(snapshot.waiting.length);
    document.getElementById("queue-viewer").textContent = snapshot.viewer
      ? ` (token ${snapshot.viewer} is looking at its picture)` : "";
  } catch (error) { showError(error); }
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
  clearInterval(queueTimer);
  if (view === "queue") { refreshQueue(); queueTimer = setInterval(refreshQueue, 2000); }
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
  initToken();
  jobs.init();
  reports.init();
  data.init();
  work.init();
  window.addEventListener("hashchange", route);
  route();
  whoami();
  connect();
}

init();
