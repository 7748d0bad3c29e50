// The event feed: follow the stream of new events and re-render the feed and the chart,
// keeping open payloads open and marking the rows that just arrived.

const hwUrl = document.querySelector('script[src*="/static/hw.js"]')?.src ?? "/static/hw.js";
const { live } = await import(hwUrl);

const script = document.getElementById("events-script");
const stream = script?.dataset.stream;
const regions = ["events-feed", "events-chart"];

const rowIds = () =>
  new Set([...document.querySelectorAll("[data-event-id]")].map((row) => row.dataset.eventId));

let known = rowIds();
const open = new Set();

document.addEventListener("toggle", (event) => {
  const details = event.target;
  if (!(details instanceof HTMLDetailsElement) || !details.dataset.payload) return;
  if (details.open) open.add(details.dataset.payload);
  else open.delete(details.dataset.payload);
}, true);

document.addEventListener("hw:refreshed", () => {
  for (const details of document.querySelectorAll("details[data-payload]")) {
    if (open.has(details.dataset.payload)) details.open = true;
  }
  const now = rowIds();
  for (const row of document.querySelectorAll("[data-event-id]")) {
    if (!known.has(row.dataset.eventId)) row.classList.add("fresh");
  }
  known = now;
});

if (stream) live(stream, regions, { events: ["event"], wait: 600 });
