// Flow runs list: filter times in the browser's time zone, clean shareable URLs,
// and live updates of the table and the counts as runs change state.
import { live } from "/static/hw.js";

const form = document.getElementById("run-filters");

// The server writes filter times in UTC; show them in local time.
function localValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

for (const input of form?.querySelectorAll("input[data-utc]") ?? []) {
  if (input.value) {
    const moment = new Date(`${input.value}Z`);
    if (!Number.isNaN(moment.getTime())) input.value = localValue(moment);
  }
}

// Submit as a URL with only the filters given, times as ISO 8601 in UTC.
form?.addEventListener("submit", (event) => {
  event.preventDefault();
  const params = new URLSearchParams();
  for (const field of form.elements) {
    if (!field.name || field.disabled) continue;
    if (field.type === "checkbox" && !field.checked) continue;
    let value = field.value.trim();
    if (!value) continue;
    if (field.type === "datetime-local") {
      const moment = new Date(value);
      if (Number.isNaN(moment.getTime())) continue;
      value = moment.toISOString().replace(".000Z", "Z");
    }
    params.append(field.name, value);
  }
  // Colons are fine in a query string, and times read better with them.
  const query = params.toString().replaceAll("%3A", ":");
  location.assign(`${form.getAttribute("action")}${query ? `?${query}` : ""}`);
});

live("/api/stream", ["runs-table", "state-counts"], { events: ["flow_run.state"], wait: 1000 });
