// The turn queue page (/queue/): take a token, watch it move up live, redeem it at the head.
import { emptyQueue, followQueue } from "./queue.js";
import { describe } from "./sse.js";

const queue = emptyQueue();
let mine = null; // {token, ticket} while this browser holds a token
const $ = (id) => document.getElementById(id);

function say(text) { $("error").textContent = text || ""; }

async function call(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty body */ }
  return { ok: response.ok, status: response.status, data };
}

function renderBoard() {
  const shown = queue.waiting.slice(0, 64);
  const columns = [0, 1, 2, 3].map((c) => {
    const column = document.createElement("div");
    column.className = "column";
    for (const [i, token] of shown.slice(c * 16, c * 16 + 16).entries()) {
      const cell = document.createElement("div");
      cell.className = "token" + (c === 0 && i === 0 ? " head" : "") + (mine && mine.token === token ? " mine" : "");
      cell.textContent = token;
      column.appendChild(cell);
    }
    return column;
  });
  $("board").replaceChildren(...columns);
  const more = queue.waiting.length - shown.length;
  $("overflow").textContent = more > 0 ? `and ${more} more: ${queue.waiting.slice(64).join(" ")}` : "";
}

/** Where this browser's token stands, in words. */
function myPlace() {
  if (!mine) return "You have no token.";
  const position = queue.waiting.indexOf(mine.token) + 1;
  if (position === 0) return `Your token ${mine.token} is no longer waiting.`;
  if (position > 1 || !queue.headDeadline) return `Your token ${mine.token} is number ${position} in the queue.`;
  const now = Date.now() / 1000;
  if (queue.viewUntil && queue.viewUntil > now) {
    return `Your token ${mine.token} is next: your 60 s start when the current viewer is done.`;
  }
  return `Your token ${mine.token} is at the head: ${Math.max(0, Math.ceil(queue.headDeadline - now))} s left to redeem it.`;
}

function render() {
  renderBoard();
  $("redeem").disabled = !mine || !queue.waiting.includes(mine.token);
  $("me").textContent = myPlace();
}

function showPicture(answer) {
  const img = document.createElement("img");
  img.src = answer.image_url; img.alt = "your kitty";
  const note = document.createElement("p");
  $("picture").replaceChildren(img, note);
  $("release").hidden = false;
  const tick = setInterval(() => {
    const left = Math.max(0, Math.ceil(answer.view_until - Date.now() / 1000));
    note.textContent = `${left} s to look at it.`;
    if (left === 0) { clearInterval(tick); done(); }
  }, 250);
  $("release").onclick = async () => { clearInterval(tick); await call("/queue/release", mine); done(); };
}

function done() { $("picture").replaceChildren(); $("release").hidden = true; mine = null; render(); }

$("take").onclick = async () => {
  const r = await call("/queue/tokens");
  if (!r.ok) { say(r.data.detail || `Could not get a token (HTTP ${r.status}).`); return; }
  mine = { token: r.data.token, ticket: r.data.ticket };
  say(""); render();
};

$("redeem").onclick = async () => {
  const r = await call("/queue/redeem", mine);
  if (!r.ok) { say(r.data.detail || `Could not redeem (HTTP ${r.status}).`); return; }
  say(""); showPicture(r.data);
};

setInterval(render, 1000); // the head's seconds count down between events
followQueue(queue, { onChange: render, onStatus: (status) => { $("live").textContent = describe(status); } });
render();
