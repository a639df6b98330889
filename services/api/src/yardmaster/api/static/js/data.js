// The Data view: upload the three CSV files with progress, follow their imports; export polls.
import { postJson, showError, upload } from "./api.js";
import { jobs, remember, subscribe } from "./store.js";
import { contract, el, stateBadge } from "./util.js";

const uploads = []; // {file, table, fraction, jobId, error}
const exports = []; // job ids

function jobCells(jobId) {
  const job = jobId && jobs.get(jobId);
  if (!job) return [el("td", {}, jobId ? el("code", {}, jobId.slice(0, 8)) : ""), el("td", {}), el("td", {})];
  const message = job.error
    ? el("span", { class: "error-text" }, job.error)
    : job.state === "finished" ? `${job.progress.done ?? ""} rows loaded` : job.progress.message || "";
  return [
    el("td", {}, el("a", { href: `#jobs/${job.id}` }, el("code", {}, job.id.slice(0, 8)))),
    el("td", { class: "import-state" }, stateBadge(job.state)),
    el("td", { class: "wrap import-message" }, message),
  ];
}

function renderUploads() {
  document.querySelector("#uploads-table tbody").replaceChildren(...uploads.map((u) =>
    el("tr", { "data-table": u.table },
      el("td", {}, u.file),
      el("td", {}, u.table),
      el("td", {}, el("progress", { max: "1", value: String(u.fraction), "aria-label": `upload of ${u.file}` }),
        ` ${Math.round(u.fraction * 100)}%`),
      ...(u.error
        ? [el("td", { colspan: "3", class: "wrap error-text upload-error" }, u.error)]
        : jobCells(u.jobId)))));
}

function renderExports() {
  document.getElementById("exports").replaceChildren(...exports.map((id) => {
    const job = jobs.get(id);
    if (!job) return el("p", {}, `Export ${id.slice(0, 8)}…`);
    return el("p", { class: "export", "data-job-id": id }, `Export ${job.params.from} → ${job.params.till}: `,
      stateBadge(job.state), " ",
      job.error ? el("span", { class: "error-text" }, job.error) : "",
      job.state === "finished" && job.result
        ? el("a", { href: job.links.result, download: job.result.name || "", "data-signed": true }, "Download CSV") : "");
  }));
}

async function send(input, table, mode) {
  const file = input.files[0];
  const entry = { file: file.name, table, fraction: 0, jobId: null, error: null };
  uploads.unshift(entry);
  renderUploads();
  const form = new FormData();
  form.append("table", table);
  form.append("mode", mode);
  form.append("file", file);
  try {
    const job = await upload("/imports", form, (fraction) => { entry.fraction = fraction; renderUploads(); });
    entry.jobId = job.id;
    remember(job);
  } catch (error) {
    entry.error = error.message;
  }
  renderUploads();
}

async function exportRange(event) {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    const job = await postJson("/exports", { from: form.from.value, till: form.till.value });
    exports.unshift(job.id);
    remember(job);
  } catch (error) { showError(error); }
  renderExports();
}

export function init() {
  const form = document.getElementById("upload-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = contract().import_tables.filter((t) => form[t] && form[t].files.length);
    if (!chosen.length) { showError("Choose at least one CSV file to upload."); return; }
    // one after the other: each import replaces its table in one transaction
    for (const table of chosen) await send(form[table], table, form.mode.value);
    form.reset();
  });
  document.getElementById("export-form").addEventListener("submit", exportRange);
  subscribe(() => { renderUploads(); renderExports(); });
}
