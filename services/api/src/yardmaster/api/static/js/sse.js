// Server-Sent Events over fetch(): unlike EventSource it can send an Authorization header and
// see why a stream was refused (503 with Retry-After, 401/403), so a page can say so.

const DEFAULT_RETRY_MS = 2000; // until the server sends its own "retry:"
const REFUSED_RETRY_MS = 10_000; // a refused token is not worth asking about often
const BUSY_RETRY_S = 5; // when a 503 carries no usable Retry-After

/** A parser of the event-stream format (WHATWG HTML, "Server-sent events"): feed it text as it
 * arrives; it calls ``dispatch(name, data, id)`` at each blank line ending an event with data,
 * and ``retry(ms)`` on a valid ``retry:`` field. */
export function eventParser(dispatch, retry = () => {}) {
  let buffer = "", name = "", data = "", id = "";

  function field(line) {
    const colon = line.indexOf(":");
    const key = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (key === "event") name = value;
    else if (key === "data") data += value + "\n";
    else if (key === "id" && !value.includes("\0")) id = value;
    else if (key === "retry" && /^\d+$/.test(value)) retry(Number(value));
  }

  function line(text) {
    if (text === "") {
      // the id outlives the event (it is the stream's last event id); name and data do not
      if (data) dispatch(name || "message", data.slice(0, -1), id);
      name = ""; data = "";
    } else if (!text.startsWith(":")) {
      field(text);
    }
  }

  return (chunk) => {
    buffer += chunk;
    const held = buffer.endsWith("\r"); // maybe the first half of "\r\n": wait for the next chunk
    const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
    buffer = lines.pop() + (held ? "\r" : "");
    lines.forEach(line);
  };
}

/** What a refused stream's problem document says (its detail, else its title). */
async function reason(response) {
  try {
    const problem = await response.json();
    return problem.detail || problem.title || `HTTP ${response.status}`;
  } catch (e) {
    return `HTTP ${response.status}`;
  }
}

function retryAfterSeconds(response) {
  const seconds = Number.parseInt(response.headers.get("Retry-After"), 10);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : BUSY_RETRY_S;
}

/** The reason an ``ended`` event gives (its data is ``{"reason": ...}``). */
function endedReason(data) {
  try { return JSON.parse(data).reason || "the server ended the stream"; }
  catch (e) { return "the server ended the stream"; }
}

/** Follow ``url`` as an event stream until ``close()``: ``onEvent(name, data, id)`` for each
 * event, ``onStatus(status)`` when the stream goes live or cannot be had, with ``state``:
 * "live"; "reconnecting" (dropped or unreachable: again after the server's retry time);
 * "busy" (503: again after Retry-After, ``retryIn`` seconds, ``detail`` says why);
 * "refused" (401/403: ``status``, ``detail``; or the server ended the stream with an ``ended``
 * event, ``status`` "ended"; again after 10 s, in case access changes).
 * A reconnection sends the last event id seen as Last-Event-ID, so the server can resume. */
export function openStream(url, { headers = {}, onEvent, onStatus = () => {} }) {
  const controller = new AbortController();
  let lastId = "", retryMs = DEFAULT_RETRY_MS, timer = null;

  function deliver(name, data, id) {
    lastId = id;
    // a faulty handler must not end the stream; rethrown outside it, it still gets noticed
    try { onEvent(name, data, id); } catch (error) { setTimeout(() => { throw error; }); }
  }

  /** Read one response; the milliseconds to wait before the next attempt. */
  async function follow(response) {
    if (response.status === 503) {
      const retryIn = retryAfterSeconds(response);
      onStatus({ state: "busy", detail: await reason(response), retryIn });
      return retryIn * 1000;
    }
    if (response.status === 401 || response.status === 403) {
      onStatus({ state: "refused", status: response.status, detail: await reason(response) });
      return REFUSED_RETRY_MS;
    }
    if (!response.ok || !response.body) {
      onStatus({ state: "reconnecting", detail: await reason(response) });
      return retryMs;
    }
    onStatus({ state: "live" });
    let ended = null; // the server's reason when it ends the stream itself ("ended" event)
    const parse = eventParser((name, data, id) => {
      if (name === "ended") ended = endedReason(data); else deliver(name, data, id);
    }, (ms) => { retryMs = ms; });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) parse(read.value);
    if (ended !== null) { // said why: no use asking again soon (a reconnection says the same)
      onStatus({ state: "refused", status: "ended", detail: ended });
      return REFUSED_RETRY_MS;
    }
    onStatus({ state: "reconnecting" });
    return retryMs;
  }

  async function connect() {
    const sent = { ...headers, Accept: "text/event-stream" };
    if (lastId) sent["Last-Event-ID"] = lastId;
    let wait;
    try {
      wait = await follow(await fetch(url, { headers: sent, cache: "no-store", signal: controller.signal }));
    } catch (error) {
      if (controller.signal.aborted) return;
      onStatus({ state: "reconnecting", detail: String(error.message || error) });
      wait = retryMs;
    }
    if (!controller.signal.aborted) timer = setTimeout(connect, wait);
  }

  connect();
  return { close() { controller.abort(); clearTimeout(timer); } };
}

/** A status as a sentence for the page ("" when live). */
export function describe(status) {
  if (!status || status.state === "live") return "";
  if (status.state === "busy") return `Live view busy: ${status.detail}; retrying in ${status.retryIn} s`;
  if (status.state === "refused" && status.status === "ended") {
    return `Live view ended: ${status.detail}; asking again in ${REFUSED_RETRY_MS / 1000} s`;
  }
  if (status.state === "refused") {
    return `Live view refused (${status.status}): ${status.detail}; retrying in ${REFUSED_RETRY_MS / 1000} s`;
  }
  return `Live view interrupted${status.detail ? ` (${status.detail})` : ""}; reconnecting…`;
}
