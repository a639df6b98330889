// The turn queue as /queue/events describes it, for the queue page and the dashboard's view.
import { openStream } from "./sse.js";

/** The queue before its first snapshot. */
export function emptyQueue() {
  return { waiting: [], headDeadline: null, viewer: null, viewUntil: null };
}

/** Change ``queue`` by one event of the stream (``data`` parsed). */
export function applyEvent(queue, name, data) {
  if (name === "snapshot") {
    queue.waiting = data.waiting; queue.headDeadline = data.head_deadline;
    queue.viewer = data.viewer; queue.viewUntil = data.view_until;
  } else if (name === "append") {
    if (!queue.waiting.includes(data.token)) queue.waiting.push(data.token);
  } else if (name === "remove" || name === "expire" || name === "serve") {
    queue.waiting = queue.waiting.filter((t) => t !== data.token);
    if (name === "serve") { queue.viewer = data.token; queue.viewUntil = data.until; }
  } else if (name === "release") {
    queue.viewer = null; queue.viewUntil = null;
  }
  if ("head_deadline" in data) queue.headDeadline = data.head_deadline;
}

/** Keep ``queue`` current from /queue/events, calling ``onChange()`` after each change;
 * the stream reconnects by itself (statuses as sse.js's). Returns it (``close()``). */
export function followQueue(queue, { headers, onChange, onStatus }) {
  return openStream("/queue/events", {
    headers,
    onStatus,
    onEvent(name, data) { applyEvent(queue, name, JSON.parse(data)); onChange(); },
  });
}
