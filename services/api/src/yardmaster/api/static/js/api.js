// Talking to the API: the access token (sent as a header; links use signed URLs), problem
// documents as readable messages.
const TOKEN_KEY = "yardmaster.token";

export const access = { mode: "unknown", principal: null };

export function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new CustomEvent("token-changed"));
}

/** An API answer that was not 2xx, carrying its problem document. */
export class ApiError extends Error {
  constructor(status, problem) {
    const title = problem.title || `HTTP ${status}`;
    super(problem.detail ? `${title}: ${problem.detail}` : title);
    this.status = status;
    this.problem = problem;
  }
}

export function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

/** A URL that GETs ``path`` without a header (a link cannot send one): signed by the API for
 * this browser's token, for that path only and for a few minutes, so the token itself never
 * goes in a URL; the path itself when there is no token (an open API). */
export async function signedUrl(path) {
  if (!token()) return path;
  return (await postJson("/signed-urls", { path })).url;
}

/** Download links (``<a data-signed href=... download>``) follow a fresh signed URL of their
 * path when clicked, so they work whenever they are clicked, however long the page was open. */
export function followSignedLinks(root = document) {
  root.addEventListener("click", async (event) => {
    const link = event.target instanceof Element && event.target.closest("a[data-signed]");
    if (!link || !token()) return; // no token: the plain link works
    event.preventDefault();
    try {
      const signed = document.createElement("a");
      signed.href = await signedUrl(link.getAttribute("href"));
      if (link.hasAttribute("download")) signed.download = link.getAttribute("download");
      signed.click();
    } catch (error) { showError(error); }
  });
}

/** The problem document of a failed response (or one made up from a non-JSON body). */
export async function problemOf(status, statusText, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body === "object") return body;
  } catch (e) { /* not JSON */ }
  return { title: statusText || `HTTP ${status}`, detail: text ? text.slice(0, 200) : undefined };
}

function noticeAuth(status, problem) {
  if (status === 401) {
    window.dispatchEvent(new CustomEvent("token-needed", { detail: problem }));
  }
}

/** fetch with the token; resolves to the Response when 2xx, else throws ApiError. */
export async function request(path, { method = "GET", json, form, accept } = {}) {
  const headers = { ...authHeaders() };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  headers.Accept = accept || "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (e) {
    throw new ApiError(0, { title: "The API is unreachable", detail: String(e.message || e) });
  }
  if (!response.ok) {
    const problem = await problemOf(response.status, response.statusText, await response.text());
    noticeAuth(response.status, problem);
    throw new ApiError(response.status, problem);
  }
  return response;
}

export async function getJson(path) { return (await request(path)).json(); }

export async function postJson(path, json) {
  return (await request(path, { method: "POST", json })).json();
}

/** POST a multipart form with upload progress (fetch cannot report it): resolves to JSON. */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, { title: "The upload failed", detail: "network error" }));
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(JSON.parse(xhr.responseText)); return; }
      const problem = await problemOf(xhr.status, xhr.statusText, xhr.responseText);
      noticeAuth(xhr.status, problem);
      reject(new ApiError(xhr.status, problem));
    };
    xhr.send(form);
  });
}

/** Show an error in the page-wide notice. */
export function showError(error) {
  const text = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  document.getElementById("notice-text").textContent = text;
  document.getElementById("notice").hidden = false;
}

export function clearError() { document.getElementById("notice").hidden = true; }
