// Headwater UI core: API calls with the page's CSRF token, declarative action buttons,
// live regions refreshed from server-sent events, relative times, theme and menu.
// Everything shown is set with textContent or taken from server-rendered (escaped) HTML.

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, message, detail = null) {
    super(message);
    this.status = status;
    this.detail = detail; // the API's `detail`: validation items with `loc` and `msg`
  }
}

/** Call the REST API: `api("POST", "/api/flow_runs/ID/cancel", body)`; JSON in, JSON out. */
export async function api(method, path, body) {
  const options = {
    method,
    credentials: "same-origin",
    headers: { "x-csrf-token": csrfToken, accept: "application/json" },
  };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const detail = data && typeof data === "object" ? (data.detail ?? null) : null;
    throw new ApiError(response.status, errorMessage(data, response), detail);
  }
  return data;
}

function errorMessage(data, response) {
  if (data && typeof data === "object") {
    if (Array.isArray(data.detail) && data.detail.length) {
      return data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    if (data.message) return data.message;
    if (typeof data.detail === "string") return data.detail;
  }
  return `${response.status} ${response.statusText}`;
}

/** A message in the corner for a few seconds; kind "error" stays longer. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = document.createElement("div");
  item.className = `toast ${kind}`;
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  item.textContent = message;
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}

/** Re-render the elements with these ids from a fresh copy of the current page. */
export async function refresh(ids) {
  const response = await fetch(location.href, {
    credentials: "same-origin",
    headers: { "x-headwater-refresh": ids.join(",") },
  });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const current = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (current && next) {
      current.replaceWith(document.importNode(next, true));
    }
  }
  updateTimes();
  document.dispatchEvent(new CustomEvent("hw:refreshed", { detail: { ids } }));
}

/**
 * Follow a server-sent event stream and refresh `ids` when any of `events` arrives,
 * at most once per `wait` ms. Returns the EventSource. Shows the live dot
 * (an element with data-live-dot) as on while connected.
 */
export function live(url, ids, { events = ["message"], wait = 700, onEvent } = {}) {
  const source = new EventSource(url, { withCredentials: true });
  let timer = null;
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      if (document.hidden) {
        pendingWhileHidden = true;
        return;
      }
      await refresh(ids);
    }, wait);
  };
  let pendingWhileHidden = false;
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pendingWhileHidden) {
      pendingWhileHidden = false;
      refresh(ids);
    }
  });
  for (const name of events) {
    source.addEventListener(name, (event) => {
      if (onEvent) onEvent(name, event);
      if (ids.length) schedule();
    });
  }
  const dots = document.querySelectorAll("[data-live-dot]");
  source.addEventListener("open", () => dots.forEach((d) => d.classList.add("on")));
  source.addEventListener("error", () => dots.forEach((d) => d.classList.remove("on")));
  window.addEventListener("pagehide", () => source.close());
  return source;
}

// Action buttons: <button data-action="POST /api/..." data-body='{...}' data-confirm="..."
// data-done="reload|refresh:id1,id2|/some/url">
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  event.preventDefault();
  const [method, path] = button.dataset.action.split(" ");
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
  button.disabled = true;
  try {
    const result = await api(method, path, body);
    await done(button.dataset.done || "reload", result, button);
  } catch (error) {
    toast(error.message, "error");
  } finally {
    button.disabled = false;
  }
});

/** After an action: "reload", "refresh:a,b", "toast:message", or a URL ({id} from the answer). */
export async function done(what, result, element) {
  if (what === "reload") {
    location.reload();
  } else if (what.startsWith("refresh:")) {
    await refresh(what.slice(8).split(","));
  } else if (what.startsWith("toast:")) {
    toast(what.slice(6));
  } else if (what) {
    location.assign(what.replace("{id}", encodeURIComponent(result?.id ?? "")));
  }
  element?.dispatchEvent(new CustomEvent("hw:done", { bubbles: true, detail: result }));
}

// Relative times: <time datetime="..." data-relative>
export function updateTimes() {
  const now = Date.now();
  for (const node of document.querySelectorAll("time[data-relative]")) {
    const moment = Date.parse(node.getAttribute("datetime"));
    if (!Number.isNaN(moment)) node.textContent = relative(moment, now);
  }
}

export function relative(moment, now = Date.now()) {
  let seconds = (now - moment) / 1000;
  const future = seconds < 0;
  seconds = Math.abs(seconds);
  if (seconds < 5) return "just now";
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]]) {
    if (seconds >= size) {
      const amount = `${Math.floor(seconds / size)} ${unit}`;
      return future ? `in ${amount}` : `${amount} ago`;
    }
  }
  return "just now";
}
setInterval(updateTimes, 15000);

// Theme: system -> dark -> light, remembered in localStorage.
const themes = ["system", "dark", "light"];
function applyTheme(theme) {
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}
applyTheme(localStorage.getItem("hw-theme") || "system");
document.querySelector("[data-theme-toggle]")?.addEventListener("click", () => {
  const current = localStorage.getItem("hw-theme") || "system";
  const next = themes[(themes.indexOf(current) + 1) % themes.length];
  localStorage.setItem("hw-theme", next);
  applyTheme(next);
  toast(`Theme: ${next}`);
});

// Narrow screens: the menu button opens the navigation.
document.querySelector("[data-nav-toggle]")?.addEventListener("click", (event) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  event.currentTarget.setAttribute("aria-expanded", String(open));
});
