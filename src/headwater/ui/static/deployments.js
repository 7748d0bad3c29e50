// A deployment's page: "Run now" through a form generated from the deployment's parameter
// schema (jsonform.js), and its runs followed live. Pause/resume and the schedule switches
// are hw.js action buttons rendered by the server.

// hw.js must be the instance base.html loaded (the same URL, version query included): a
// second instance would register its click handlers again and send every action twice.
const version = new URL(import.meta.url).search;
const { api, live } = await import(`/static/hw.js${version}`);
const { jsonForm } = await import(`/static/jsonform.js${version}`);

const data = JSON.parse(document.getElementById("deployment-form-data").textContent);
const dialog = document.getElementById("run-dialog");
const runForm = document.getElementById("run-form");
const runError = document.getElementById("run-error");
const submit = runForm.querySelector('button[type="submit"]');
let parameters = null;

// Delegated: the page head (with the button) is re-rendered by refresh().
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-run-now]")) {
    openDialog();
  } else if (event.target.closest("#run-dialog [data-close]")) {
    dialog.close();
  }
});

function openDialog() {
  parameters = jsonForm(document.getElementById("run-parameters"), data.schema, data.parameters);
  runError.textContent = "";
  dialog.showModal();
  dialog.querySelector("#run-parameters input, #run-parameters select, #run-parameters textarea")?.focus();
}

runForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  runError.textContent = "";
  const { ok, value } = parameters.read();
  if (!ok) {
    runError.textContent = "Correct the parameters marked above.";
    return;
  }
  const body = { parameters: value };
  const name = document.getElementById("run-name").value.trim();
  if (name) body.name = name;
  submit.disabled = true;
  try {
    const run = await api("POST", `/api/deployments/${encodeURIComponent(data.id)}/create_flow_run`, body);
    location.assign(`/flow-runs/${encodeURIComponent(run.id)}`);
  } catch (error) {
    if (error.status === 422) parameters.showErrors(error.detail ?? parameterProblems(error.message));
    runError.textContent = error.message;
    submit.disabled = false;
  }
});

/**
 * The server's parameter check answers with one message, "Invalid parameters: parameter
 * 'n': 'abc' is not of type 'integer'; 'tag' is a required property (...)."; turn its
 * parts into one {loc, msg} item per parameter, shown next to its field.
 */
function parameterProblems(message) {
  const text = message.replace(/^Invalid parameters: /, "").replace(/\.$/, "");
  const found = new Map(); // parameter -> messages
  const add = (name, msg) => found.set(name, [...(found.get(name) || []), msg]);
  for (const part of text.split("; ")) {
    let match = part.match(/^parameter '(.+?)': (.*)$/s);
    if (match && Object.hasOwn(data.schema?.properties ?? {}, match[1])) {
      add(match[1], match[2]);
    } else if (match) {
      // A nested value, "emails.0": name the item within the parameter.
      const [name, ...rest] = match[1].split(".");
      add(name, `${rest.join(".")}: ${match[2]}`);
    } else if ((match = part.match(/^'(.+?)' is a required property/))) {
      add(match[1], "required");
    }
  }
  return [...found].map(([name, messages]) => ({ loc: [name], msg: messages.join("; ") }));
}

live("/api/stream", ["deployment-runs", "deployment-upcoming"], {
  events: ["flow_run.state"],
  wait: 1000,
});
