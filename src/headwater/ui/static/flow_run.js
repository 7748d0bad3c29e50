// The flow run page: logs filtered by level and text, new lines and state changes followed
// live from /api/stream, and the resume form of a paused run. The task run page uses the
// log filters only. Lines are built with textContent; regions come back server-rendered.

// hw.js is imported with the same address (version query) base.html loads it with: a
// second copy of the module would handle every action button twice.
const version = new URL(import.meta.url).search;
const { live, refresh, toast } = await import(`/static/hw.js${version}`);
const { jsonForm } = await import(`/static/jsonform.js${version}`);

const LEVELS = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };
const MIN_LEVEL = { "": 0, DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };
/** Lines kept in the page; older ones are dropped as new ones arrive. */
const MAX_LINES = 5000;

const root = document.getElementById("flow-run");
const runId = root?.dataset.flowRunId;
const regions = (root?.dataset.regions || "").split(",").filter(Boolean);

// -- Logs ---------------------------------------------------------------------------------

const box = document.querySelector("[data-log-lines]");
const levelSelect = document.querySelector("[data-log-level]");
const searchInput = document.querySelector("[data-log-search]");
const emptyNote = document.querySelector("[data-log-empty]");
const seen = new Set(box ? [...box.children].map((line) => line.dataset.id) : []);
// With earlier lines left out, the stream's replay of them is not shown either.
const since = box?.dataset.since ? Date.parse(box.dataset.since) : null;

function filters() {
  return {
    min: MIN_LEVEL[levelSelect?.value ?? ""] ?? 0,
    text: (searchInput?.value ?? "").trim().toLowerCase(),
  };
}

function shows(line, { min, text }) {
  if (Number(line.dataset.level) < min) return false;
  return !text || line.textContent.toLowerCase().includes(text);
}

function applyFilters() {
  if (!box) return;
  const current = filters();
  let shown = 0;
  for (const line of box.children) {
    line.hidden = !shows(line, current);
    if (!line.hidden) shown += 1;
  }
  if (emptyNote) emptyNote.hidden = shown > 0;
  // Shareable: the filters live in the address.
  const url = new URL(location.href);
  for (const [key, value] of [["level", levelSelect?.value], ["q", searchInput?.value]]) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  history.replaceState(history.state, "", url);
}

function taskName(id) {
  try {
    const names = JSON.parse(document.getElementById("task-names")?.textContent || "{}");
    return names[id] || id.replaceAll("-", "").slice(0, 8);
  } catch {
    return id.slice(0, 8);
  }
}

function logLine(data) {
  const line = document.createElement("div");
  line.className = "log-line";
  line.dataset.id = data.id;
  line.dataset.level = String(data.level);
  const time = document.createElement("time");
  time.dateTime = data.timestamp;
  time.title = data.timestamp;
  const moment = new Date(data.timestamp);
  time.textContent = Number.isNaN(moment.getTime()) ? "" : moment.toISOString().slice(11, 23);
  const level = document.createElement("span");
  const name = LEVELS[data.level] || `L${data.level}`;
  level.className = `level level-${name}`;
  level.textContent = name;
  const message = document.createElement("span");
  message.className = "message";
  if (data.task_run_id) {
    const link = document.createElement("a");
    link.className = "log-task";
    link.href = `/task-runs/${encodeURIComponent(data.task_run_id)}`;
    link.textContent = taskName(data.task_run_id);
    message.append(link, " ");
  }
  message.append(data.message);
  line.append(time, level, message);
  return line;
}

function appendLog(data) {
  if (!box || seen.has(data.id)) return;
  if (since !== null && Date.parse(data.timestamp) < since) return;
  seen.add(data.id);
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const line = logLine(data);
  line.hidden = !shows(line, filters());
  box.append(line);
  while (box.children.length > MAX_LINES) {
    seen.delete(box.firstElementChild.dataset.id);
    box.firstElementChild.remove();
  }
  if (!line.hidden && emptyNote) emptyNote.hidden = true;
  const count = document.querySelector("[data-log-count]");
  if (count) count.textContent = (Number(count.textContent.replace(/\D/g, "")) + 1).toLocaleString("en-US");
  if (atBottom) box.scrollTop = box.scrollHeight;
}

levelSelect?.addEventListener("change", applyFilters);
searchInput?.addEventListener("input", applyFilters);
if (box) {
  applyFilters();
  box.scrollTop = box.scrollHeight;
}

// -- Live updates -------------------------------------------------------------------------

function follow() {
  const pending = new Set();
  let timer = null;
  // A busy run changes many times a second: refresh at most every 600 ms, and leave the
  // server at least twice the time the last refresh took (a large run renders slower).
  let wait = 600;
  const schedule = (ids) => {
    ids.forEach((id) => pending.add(id));
    if (timer) return;
    timer = setTimeout(async () => {
      const ids = [...pending];
      pending.clear();
      const started = performance.now();
      try {
        await refresh(ids);
      } catch {
        // The server is away for a moment: the next event refreshes again.
      } finally {
        wait = Math.max(600, 2 * (performance.now() - started));
        timer = null;
        if (pending.size) schedule([]);
      }
    }, wait);
  };
  // The lines on the page are not sent again: the stream starts at the last of them.
  const after = root.dataset.streamAfter ? `&after=${encodeURIComponent(root.dataset.streamAfter)}` : "";
  const url = `/api/stream?flow_run_id=${encodeURIComponent(runId)}&kinds=states,logs${after}`;
  const source = live(url, [], {
    events: ["log", "flow_run.state", "task_run.state", "end"],
    onEvent(name, event) {
      if (name === "log") {
        appendLog(JSON.parse(event.data));
      } else if (name === "flow_run.state") {
        schedule(regions);
      } else if (name === "task_run.state") {
        schedule(["run-timeline", "run-graph", "run-result"]);
      } else if (name === "end") {
        // The run is final and the stream is done: do not let the browser reconnect.
        source.close();
        schedule(regions);
      }
    },
  });
  // A refreshed header brings a new live dot: keep it lit while connected.
  document.addEventListener("hw:refreshed", () => {
    if (source.readyState === EventSource.OPEN) {
      document.querySelectorAll("[data-live-dot]").forEach((dot) => dot.classList.add("on"));
    }
  });
}

if (runId && root.dataset.final !== "true") follow();

// -- Resume with input --------------------------------------------------------------------

const dialog = document.getElementById("resume-dialog");
let form = null;

document.addEventListener("click", (event) => {
  if (event.target.closest("[data-resume-form]")) {
    const schema = JSON.parse(document.getElementById("resume-schema")?.textContent || "{}");
    form = jsonForm(dialog.querySelector("[data-resume-fields]"), schema);
    dialog.querySelector("[data-resume-error]").textContent = "";
    dialog.showModal();
  } else if (event.target.closest("[data-resume-close]")) {
    dialog.close();
  }
});

dialog?.querySelector("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = dialog.querySelector("[data-resume-error]");
  const submit = dialog.querySelector("[type=submit]");
  error.textContent = "";
  const { ok, value } = form.read();
  if (!ok) return;
  submit.disabled = true;
  try {
    const answer = await post(`/api/flow_runs/${encodeURIComponent(runId)}/resume`, { run_input: value });
    if (answer.ok) {
      dialog.close();
      toast("Resumed");
      await refresh(regions);
      return;
    }
    // 422: the input does not fit the run's input model; say so next to the fields.
    const message = answer.data?.message || `${answer.status}: the run was not resumed`;
    form.showErrors(Array.isArray(answer.data?.detail) ? answer.data.detail : fieldErrors(message));
    error.textContent = message;
  } catch (failure) {
    error.textContent = String(failure.message || failure);
  } finally {
    submit.disabled = false;
  }
});

/** POST JSON with the page's CSRF token; the answer's JSON is kept whatever the status,
 *  since a 422 carries the per-field `detail` the form shows. */
async function post(path, body) {
  const token = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "x-csrf-token": token, "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}

/** Per-field errors named in a message: "field 'note': ... is too long; 'x' is a required
 *  property" (how the server words a run input that does not match its schema). */
function fieldErrors(message) {
  const found = [];
  for (const match of message.matchAll(/field '([^']+)': (.+?)(?:; |\.$|$)/g)) {
    found.push({ loc: match[1].split("."), msg: match[2] });
  }
  for (const match of message.matchAll(/'([^']+)' is a required property/g)) {
    found.push({ loc: [match[1]], msg: "required" });
  }
  return found;
}
