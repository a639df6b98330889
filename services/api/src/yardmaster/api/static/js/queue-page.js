// The turn queue page (/queue/): take a token, watch it move up live, redeem it at the head.
// The token's secret claim is kept in localStorage, so every tab of this browser holds the
// same turn (and a reload keeps it); it goes to the server only in request bodies.
import { emptyQueue, followQueue } from "./queue.js";
import { describe } from "./sse.js";

const queue = emptyQueue();
const KEPT = "yardmaster.queue.turn";
let mine = kept(); // {token, claim, viewing?} while this browser holds a turn
let tick = null; // the picture's countdown, while one is shown
const $ = (id) => document.getElementById(id);

/** The turn this browser holds, as kept in localStorage (null when none). */
function kept() {
  try { return JSON.parse(localStorage.getItem(KEPT)) || null; } catch (e) { return null; }
}

/** Hold ``turn`` (null: none) in every tab of this browser. */
function keep(turn) {
  mine = turn;
  if (turn) localStorage.setItem(KEPT, JSON.stringify(turn)); else localStorage.removeItem(KEPT);
}

/** What a redeem or release sends: the token and its claim, never more. */
function presented() { return { token: mine.token, claim: mine.claim }; }

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
  if (mine.viewing) return `Your token ${mine.token} was served: the picture is yours for a while.`;
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

function showPicture(viewing) {
  clearInterval(tick);
  const img = document.createElement("img");
  img.src = viewing.image_url; img.alt = "your kitty";
  const note = document.createElement("p");
  $("picture").replaceChildren(img, note);
  $("release").hidden = false;
  const count = () => {
    const left = Math.max(0, Math.ceil(viewing.view_until - Date.now() / 1000));
    note.textContent = `${left} s to look at it.`;
    if (left === 0) done();
  };
  count();
  tick = setInterval(count, 250);
}

/** The window is over (here or in another tab): forget the turn. */
function done() {
  clearInterval(tick); tick = null;
  $("picture").replaceChildren(); $("release").hidden = true;
  keep(null); render();
}

/** Show what the kept turn says (after a load, or when another tab changed it). */
function restore() {
  if (mine && mine.viewing && mine.viewing.view_until > Date.now() / 1000) showPicture(mine.viewing);
  else if (mine && mine.viewing) done(); // its window passed while no tab looked
  else if (tick !== null) { clearInterval(tick); tick = null; $("picture").replaceChildren(); $("release").hidden = true; }
  render();
}

$("take").onclick = async () => {
  const r = await call("/queue/tokens");
  if (!r.ok) { say(r.data.detail || `Could not get a token (HTTP ${r.status}).`); return; }
  keep({ token: r.data.token, claim: r.data.claim });
  say(""); render();
};

$("redeem").onclick = async () => {
  const r = await call("/queue/redeem", presented());
  if (!r.ok) { say(r.data.detail || `Could not redeem (HTTP ${r.status}).`); return; }
  keep({ ...mine, viewing: { image_url: r.data.image_url, view_until: r.data.view_until } });
  say(""); showPicture(mine.viewing);
};

$("release").onclick = async () => {
  if (mine) await call("/queue/release", presented());
  done();
};

// Another tab of this browser took, redeemed or gave up the turn.
window.addEventListener("storage", (event) => {
  if (event.key !== KEPT && event.key !== null) return;
  mine = kept(); restore();
});

setInterval(render, 1000); // the head's seconds count down between events
followQueue(queue, { onChange: render, onStatus: (status) => { $("live").textContent = describe(status); } });
restore();
