// Automations: the on/off switches of the list and live firings on an automation's page.
// The create/edit form is automation_form.js.

import { api, live, refresh, toast } from "/static/hw.js";

// -- list: enabled switches ---------------------------------------------------------------

document.addEventListener("change", async (event) => {
  const box = event.target.closest?.("[data-automation-toggle]");
  if (!box) return;
  const enabled = box.checked;
  const text = box.parentElement.querySelector(".switch-text");
  box.disabled = true;
  try {
    await api("PATCH", `/api/automations/${box.dataset.automationToggle}`, { enabled });
    if (text) text.textContent = enabled ? "On" : "Off";
    toast(enabled ? "Resumed" : "Paused");
  } catch (error) {
    box.checked = !enabled;
    toast(error.message, "error");
  } finally {
    box.disabled = false;
  }
});

// -- one automation: firings appear as they happen -----------------------------------------

const firings = document.getElementById("firings");
if (firings) {
  const id = firings.dataset.automation.replaceAll("-", "");
  let timer = null;
  const since = encodeURIComponent(firings.dataset.since);
  live(`/api/events/stream?event=headwater.automation.*&since=${since}`, [], {
    events: ["event"],
    onEvent(_name, message) {
      let resource = "";
      try {
        resource = JSON.parse(message.data).resource["headwater.resource.id"] || "";
      } catch {
        return;
      }
      if (!resource.replaceAll("-", "").endsWith(id) || timer) return;
      timer = setTimeout(() => {
        timer = null;
        refresh(["firings"]);
      }, 500);
    },
  });
}
