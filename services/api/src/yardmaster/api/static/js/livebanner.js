// The dashboard's banner saying which of its live views is not live now, and why.
import { describe } from "./sse.js";

const LABELS = { jobs: "Job updates", files: "File pipeline", queue: "Turn queue" };
const troubled = new Map(); // live view name -> its last status other than "live"

/** Take the status (sse.js's) of the live view ``name``, ``null`` once it is closed. */
export function showLive(name, status) {
  if (status && status.state !== "live") troubled.set(name, status); else troubled.delete(name);
  const lines = [...troubled].map(([view, value]) => `${LABELS[view]}: ${describe(value)}`);
  document.getElementById("live-text").textContent = lines.join("\n");
  document.getElementById("live-banner").hidden = !lines.length;
}
