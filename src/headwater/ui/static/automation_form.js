// The automation form (new and edit): a trigger form or JSON, an action builder or JSON.
// Every element is built with createElement/textContent; nothing from data goes to innerHTML.

import { toast } from "/static/hw.js";

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

/** A field's problem: thrown by readers, shown next to `where` (a data-error-for name). */
class FieldError extends Error {
  constructor(where, message) {
    super(message);
    this.where = where;
  }
}

const lines = (text) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);

/** "key=value" lines -> {key: value}; a key given twice gets a list of values. */
function parseLabels(text, where) {
  const labels = {};
  for (const line of lines(text)) {
    const at = line.indexOf("=");
    if (at < 1) throw new FieldError(where, `"${line}" is not label=pattern`);
    const key = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (key in labels) labels[key] = [].concat(labels[key], value);
    else labels[key] = value;
  }
  return labels;
}

function formatLabels(labels) {
  const out = [];
  for (const [key, value] of Object.entries(labels || {})) {
    for (const item of [].concat(value)) out.push(`${key}=${item}`);
  }
  return out.join("\n");
}

function parseJson(text, where, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FieldError(where, `${what} is not valid JSON: ${error.message}`);
  }
}

const ACTION_TYPES = [
  ["run-deployment", "Run a deployment"],
  ["send-notification", "Send a notification"],
  ["call-webhook", "Call a webhook"],
  ["pause-deployment", "Pause a deployment"],
  ["resume-deployment", "Resume a deployment"],
  ["cancel-flow-run", "Cancel the flow run"],
  ["suspend-flow-run", "Suspend the flow run"],
  ["resume-flow-run", "Resume the flow run"],
  ["change-flow-run-state", "Change the flow run's state"],
  ["pause-work-pool", "Pause a work pool"],
  ["resume-work-pool", "Resume a work pool"],
  ["pause-work-queue", "Pause a work queue"],
  ["resume-work-queue", "Resume a work queue"],
  ["pause-automation", "Pause an automation"],
  ["resume-automation", "Resume an automation"],
  ["do-nothing", "Do nothing (record the firing)"],
];
const TYPE_LABELS = Object.fromEntries(ACTION_TYPES);

const deploymentField = { key: "deployment_id", label: "Deployment", kind: "deployment" };
const poolField = { key: "work_pool", label: "Work pool", kind: "work_pool" };
const automationField = {
  key: "automation",
  label: "Automation name",
  kind: "text",
  hint: "empty: this automation",
};
const ACTION_FIELDS = {
  "run-deployment": [
    deploymentField,
    {
      key: "parameters",
      label: "Parameters",
      kind: "json",
      hint: 'a JSON object; values may be templates, e.g. {"n": "{{ events | length }}"}',
    },
  ],
  "pause-deployment": [deploymentField],
  "resume-deployment": [deploymentField],
  "pause-work-pool": [poolField],
  "resume-work-pool": [poolField],
  "pause-work-queue": [poolField, { key: "work_queue", label: "Work queue", kind: "text" }],
  "resume-work-queue": [poolField, { key: "work_queue", label: "Work queue", kind: "text" }],
  "pause-automation": [automationField],
  "resume-automation": [automationField],
  "change-flow-run-state": [
    {
      key: "state",
      label: "State",
      kind: "select",
      options: ["FAILED", "CANCELLED", "COMPLETED", "CRASHED", "SCHEDULED", "PENDING", "RUNNING", "PAUSED"],
    },
    { key: "message", label: "Message", kind: "text", hint: "a template" },
  ],
  "send-notification": [
    {
      key: "url",
      label: "Apprise URLs",
      kind: "urls",
      hint: "one per line: slack://…, mailto://…, json://host/path",
    },
    { key: "secret", label: "Or a Secret holding them", kind: "text", hint: "the secret's name" },
    { key: "subject", label: "Subject", kind: "text", placeholder: "Headwater automation {{ automation.name }} fired" },
    { key: "body", label: "Body", kind: "textarea", placeholder: "{{ event.event }} on {{ event.resource.id }}" },
  ],
  "call-webhook": [
    { key: "url", label: "URL", kind: "text", placeholder: "https://example.com/hook" },
    { key: "method", label: "Method", kind: "select", options: ["POST", "PUT", "PATCH", "GET", "DELETE"] },
    { key: "payload", label: "Payload", kind: "textarea", placeholder: "{{ event | tojson }}" },
    { key: "headers", label: "Headers", kind: "json", hint: 'a JSON object, e.g. {"Authorization": "Bearer …"}' },
  ],
};
const ABOUT_EVENT = {
  "cancel-flow-run": "Cancels the flow run the triggering event is about.",
  "suspend-flow-run": "Suspends the event's flow run if it has not started.",
  "resume-flow-run": "Resumes the event's paused or suspended flow run.",
  "change-flow-run-state": "Forces the event's flow run into a state.",
  "do-nothing": "Only records the firing.",
};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function setUpForm(form) {
  const data = JSON.parse(document.getElementById("automation-data").textContent);
  const { deployments, work_pools: workPools } = data.choices;
  const automation = data.automation;
  const input = (name) => form.elements.namedItem(name);
  const errorBox = document.getElementById("form-errors");

  // -- base fields
  input("name").value = automation?.name ?? "";
  input("description").value = automation?.description ?? "";
  input("tags").value = (automation?.tags ?? []).join(", ");
  input("enabled").checked = automation?.enabled ?? true;

  // -- trigger: a form for event triggers, JSON for every trigger
  // The form edits a copy of the trigger, so fields it has no input for are kept.
  let triggerBase = automation?.trigger ?? { type: "event", expect: ["my.event"], threshold: 1 };
  let triggerMode = "form";

  const formCanShow = (trigger) =>
    trigger &&
    typeof trigger === "object" &&
    !Array.isArray(trigger) &&
    (trigger.type ?? "event") === "event" &&
    !(Array.isArray(trigger.match_related) && trigger.match_related.length > 1);

  function fillTrigger(trigger) {
    triggerBase = trigger;
    input("posture").value = trigger.posture ?? "Reactive";
    input("threshold").value = trigger.threshold ?? 1;
    input("within").value = trigger.within ?? 0;
    input("expect").value = (trigger.expect ?? []).join("\n");
    input("after").value = (trigger.after ?? []).join("\n");
    input("for_each").value = (trigger.for_each ?? []).join("\n");
    input("match").value = formatLabels(trigger.match);
    const related = Array.isArray(trigger.match_related)
      ? trigger.match_related[0]
      : trigger.match_related;
    input("match_related").value = formatLabels(related);
    if (trigger.after?.length || trigger.for_each?.length) form.querySelector("details.more").open = true;
  }

  function readTriggerForm() {
    const trigger = { ...triggerBase, type: "event" };
    const setList = (key) => {
      const values = lines(input(key).value);
      if (values.length) trigger[key] = values;
      else delete trigger[key];
    };
    ["expect", "after", "for_each"].forEach(setList);
    const match = parseLabels(input("match").value, "trigger");
    const related = parseLabels(input("match_related").value, "trigger");
    if (Object.keys(match).length) trigger.match = match;
    else delete trigger.match;
    if (Object.keys(related).length) trigger.match_related = related;
    else delete trigger.match_related;
    trigger.posture = input("posture").value;
    const threshold = input("threshold").value.trim();
    const within = input("within").value.trim();
    if (threshold !== "") trigger.threshold = Number(threshold);
    else delete trigger.threshold;
    if (within !== "") trigger.within = Number(within);
    else delete trigger.within;
    return trigger;
  }

  function readTrigger() {
    if (triggerMode === "form") return readTriggerForm();
    return parseJson(input("trigger_json").value, "trigger", "The trigger");
  }

  function showTriggerMode(mode) {
    triggerMode = mode;
    for (const pane of form.querySelectorAll("[data-trigger-pane]")) {
      pane.hidden = pane.dataset.triggerPane !== mode;
    }
    for (const tab of form.querySelectorAll("[data-trigger-mode]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.triggerMode === mode));
    }
  }

  form.querySelectorAll("[data-trigger-mode]").forEach((tab) =>
    tab.addEventListener("click", () => {
      const mode = tab.dataset.triggerMode;
      if (mode === triggerMode) return;
      setError("trigger", "");
      try {
        if (mode === "json") {
          input("trigger_json").value = JSON.stringify(readTriggerForm(), null, 2);
        } else {
          const trigger = parseJson(input("trigger_json").value, "trigger", "The trigger");
          if (!formCanShow(trigger)) {
            throw new FieldError("trigger", "Only an event trigger with at most one related-resource match fits the form; edit this one as JSON.");
          }
          fillTrigger(trigger);
        }
        showTriggerMode(mode);
      } catch (error) {
        setError(error.where ?? "trigger", error.message);
      }
    }),
  );

  // Presets: the common triggers, with the deployment chosen beside them.
  const presetDeployment = form.querySelector("[data-preset-deployment]");
  if (deployments.length) {
    for (const deployment of deployments) {
      presetDeployment.append(element("option", { value: deployment.id, text: deployment.name }));
    }
  } else {
    presetDeployment.append(element("option", { value: "", text: "(no deployments yet)" }));
  }
  const PRESETS = {
    "run-failed": () => ({
      type: "event",
      expect: ["headwater.flow-run.Failed", "headwater.flow-run.Crashed"],
      match: { "headwater.resource.id": "headwater.flow-run.*" },
      posture: "Reactive",
      threshold: 1,
      within: 0,
    }),
    "deployment-failed": (deployment) => ({
      type: "event",
      expect: ["headwater.flow-run.Failed", "headwater.flow-run.Crashed"],
      match: { "headwater.resource.id": "headwater.flow-run.*" },
      match_related: {
        "headwater.resource.role": "deployment",
        "headwater.resource.id": `headwater.deployment.${deployment}`,
      },
      posture: "Reactive",
      threshold: 1,
      within: 0,
    }),
    "deployment-late": (deployment) => ({
      type: "event",
      posture: "Proactive",
      after: ["headwater.flow-run.Running"],
      expect: ["headwater.flow-run.Completed"],
      for_each: ["headwater.resource.id"],
      match: { "headwater.resource.id": "headwater.flow-run.*" },
      match_related: {
        "headwater.resource.role": "deployment",
        "headwater.resource.id": `headwater.deployment.${deployment}`,
      },
      threshold: 1,
      within: 3600,
    }),
    custom: () => ({ type: "event", expect: ["my.event"], posture: "Reactive", threshold: 1, within: 0 }),
  };
  form.querySelectorAll("[data-preset]").forEach((button) =>
    button.addEventListener("click", () => {
      const preset = button.dataset.preset;
      const deployment = presetDeployment.value;
      if (preset.startsWith("deployment-") && !deployment) {
        toast("Deploy a flow first: there is no deployment to watch.", "error");
        return;
      }
      fillTrigger(PRESETS[preset](deployment));
      showTriggerMode("form");
      setError("trigger", "");
    }),
  );

  // -- actions: cards built from ACTION_FIELDS, or JSON
  const list = document.getElementById("action-list");
  const typeSelect = document.getElementById("add-action-type");
  for (const [type, label] of ACTION_TYPES) typeSelect.append(element("option", { value: type, text: label }));
  let actionsMode = "builder";
  const cards = [];

  function deploymentSelect(action) {
    const select = element("select");
    select.append(element("option", { value: "", text: "(the event's deployment)" }));
    let chosen = action.deployment_id ?? "";
    if (!chosen && action.deployment) {
      chosen = deployments.find((d) => d.name === action.deployment)?.id ?? "";
    }
    for (const deployment of deployments) {
      select.append(element("option", { value: deployment.id, text: deployment.name }));
    }
    if (chosen && !deployments.some((d) => d.id === chosen)) {
      select.append(element("option", { value: chosen, text: action.deployment ?? chosen }));
    }
    select.value = chosen;
    // Untouched, the action keeps naming its deployment the way it did (by name or id).
    select.dataset.initial = chosen;
    return select;
  }

  function workPoolSelect(action) {
    const select = element("select");
    select.append(element("option", { value: "", text: "(the event's work pool)" }));
    for (const name of workPools) select.append(element("option", { value: name, text: name }));
    if (action.work_pool && !workPools.includes(action.work_pool)) {
      select.append(element("option", { value: action.work_pool, text: action.work_pool }));
    }
    select.value = action.work_pool ?? "";
    return select;
  }

  function control(field, action) {
    const value = action[field.key];
    if (field.kind === "deployment") return deploymentSelect(action);
    if (field.kind === "work_pool") return workPoolSelect(action);
    if (field.kind === "select") {
      const select = element("select");
      for (const option of field.options) select.append(element("option", { value: option, text: option }));
      if (value) select.value = value;
      return select;
    }
    if (field.kind === "json") {
      const area = element("textarea", { rows: 3, spellcheck: "false", placeholder: "{}" });
      area.value = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
      return area;
    }
    if (field.kind === "urls") {
      const area = element("textarea", { rows: 2, spellcheck: "false" });
      area.value = [].concat(value ?? []).join("\n");
      return area;
    }
    const box =
      field.kind === "textarea"
        ? element("textarea", { rows: 3, placeholder: field.placeholder })
        : element("input", { placeholder: field.placeholder, autocomplete: "off" });
    box.value = value ?? "";
    return box;
  }

  function addCard(action) {
    const fields = ACTION_FIELDS[action.type] ?? [];
    const controls = fields.map((field) => [field, control(field, action)]);
    const error = element("p", { className: "error", "data-testid": "action-error" });
    const item = element("li", { className: "action-card", "data-action-type": action.type });
    const remove = element("button", { type: "button", className: "button small danger", text: "Remove" });
    const up = element("button", { type: "button", className: "button small", text: "Up", "aria-label": "Move up" });
    item.append(
      element(
        "div",
        { className: "action-head" },
        element("strong", { text: TYPE_LABELS[action.type] ?? action.type }),
        element("span", { className: "muted mono small", text: action.type }),
        element("span", { className: "action-buttons" }, up, remove),
      ),
    );
    if (ABOUT_EVENT[action.type]) item.append(element("p", { className: "muted small", text: ABOUT_EVENT[action.type] }));
    for (const [field, box] of controls) {
      box.dataset.field = field.key;
      const label = element("label", { className: "field" }, field.label);
      if (field.hint) label.append(element("span", { className: "hint", text: field.hint }));
      label.append(box);
      item.append(label);
    }
    item.append(error);
    const card = {
      item,
      error,
      read() {
        const value = { ...action };
        for (const [field, box] of controls) {
          const text = box.value.trim();
          if (field.kind === "deployment") {
            if (text === box.dataset.initial) continue;
            delete value.deployment;
            delete value.deployment_id;
            if (text) value.deployment_id = text;
            continue;
          }
          if (text === "") {
            delete value[field.key];
          } else if (field.kind === "json") {
            value[field.key] = parseJson(text, card, field.label);
          } else if (field.kind === "urls") {
            const urls = lines(text);
            value[field.key] = urls.length === 1 ? urls[0] : urls;
          } else {
            value[field.key] = text;
          }
        }
        return value;
      },
    };
    remove.addEventListener("click", () => {
      cards.splice(cards.indexOf(card), 1);
      item.remove();
    });
    up.addEventListener("click", () => {
      const at = cards.indexOf(card);
      if (at < 1) return;
      cards.splice(at, 1);
      cards.splice(at - 1, 0, card);
      item.previousElementSibling.before(item);
    });
    cards.push(card);
    list.append(item);
    return card;
  }

  function fillActions(actions) {
    cards.splice(0).forEach((card) => card.item.remove());
    actions.forEach(addCard);
  }

  function readActions() {
    if (actionsMode === "builder") {
      return cards.map((card) => {
        card.error.textContent = "";
        return card.read();
      });
    }
    const actions = parseJson(input("actions_json").value, "actions", "The actions");
    if (!Array.isArray(actions)) throw new FieldError("actions", "The actions must be a JSON list, e.g. [{\"type\": \"do-nothing\"}]");
    return actions;
  }

  function showActionsMode(mode) {
    actionsMode = mode;
    for (const pane of form.querySelectorAll("[data-actions-pane]")) pane.hidden = pane.dataset.actionsPane !== mode;
    for (const tab of form.querySelectorAll("[data-actions-mode]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.actionsMode === mode));
    }
  }

  form.querySelectorAll("[data-actions-mode]").forEach((tab) =>
    tab.addEventListener("click", () => {
      const mode = tab.dataset.actionsMode;
      if (mode === actionsMode) return;
      setError("actions", "");
      try {
        if (mode === "json") {
          input("actions_json").value = JSON.stringify(readActions(), null, 2);
        } else {
          const actions = readActions();
          const unknown = actions.find((a) => !a || typeof a !== "object" || !TYPE_LABELS[a.type]);
          if (unknown) throw new FieldError("actions", `Unknown action: ${JSON.stringify(unknown)}`);
          fillActions(actions);
        }
        showActionsMode(mode);
      } catch (error) {
        showFieldError(error);
      }
    }),
  );

  document.getElementById("add-action").addEventListener("click", () => {
    const type = typeSelect.value;
    const action = { type };
    if (type === "send-notification") action.url = "";
    addCard(action).item.querySelector("input, select, textarea")?.focus();
  });

  const listJson = (key) => {
    const text = input(key).value.trim();
    if (!text) return [];
    const value = parseJson(text, key, key.replaceAll("_", " "));
    if (!Array.isArray(value)) throw new FieldError(key, `${key} must be a JSON list`);
    return value;
  };

  // -- errors
  function setError(where, message) {
    const box = form.querySelector(`[data-error-for="${where}"]`);
    if (box) box.textContent = message;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach((box) => (box.textContent = ""));
    cards.forEach((card) => (card.error.textContent = ""));
    errorBox.hidden = true;
    errorBox.querySelector("ul").replaceChildren();
  }

  function summarize(items) {
    const ul = errorBox.querySelector("ul");
    ul.replaceChildren(
      ...items.map(([path, message]) => {
        const li = element("li");
        if (path) li.append(element("code", { text: path }), ": ");
        li.append(message);
        return li;
      }),
    );
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest" });
  }

  function showFieldError(error) {
    if (error.where && typeof error.where === "object") error.where.error.textContent = error.message;
    else setError(error.where ?? "", error.message);
  }

  /** Put one API error next to its field: loc is ["body", "trigger", ...] or a message's "actions[0]". */
  function place(path, message) {
    const [top, index] = path;
    if (top === "actions" && actionsMode === "builder" && Number.isInteger(index) && cards[index]) {
      cards[index].error.textContent = message;
    } else if (top) {
      setError(top, message);
    }
  }

  function showApiErrors(status, body) {
    const detail = body && Array.isArray(body.detail) ? body.detail : null;
    if (detail && detail.length) {
      const items = detail.map((item) => {
        const path = (item.loc || []).filter((part) => part !== "body");
        place(path, item.msg);
        return [path.join("."), item.msg];
      });
      summarize(items);
      return;
    }
    const message = (body && (body.message || body.detail)) || `The server answered ${status}.`;
    const named = /^(actions|actions_on_trigger|actions_on_resolve)\[(\d+)\]/.exec(message);
    if (named) place([named[1], Number(named[2])], message);
    else if (status === 409) setError("name", message);
    summarize([[named ? named[0] : "", String(message)]]);
  }

  // -- submit
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let body;
    try {
      const tags = input("tags")
        .value.split(",")
        .map((tag) => tag.trim())
        .filter(Boolean);
      body = {
        name: input("name").value.trim(),
        description: input("description").value.trim() || null,
        enabled: input("enabled").checked,
        tags,
        trigger: readTrigger(),
        actions: readActions(),
        actions_on_trigger: listJson("actions_on_trigger"),
        actions_on_resolve: listJson("actions_on_resolve"),
      };
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      showFieldError(error);
      summarize([["", error.message]]);
      return;
    }
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.path, {
        method: form.dataset.method,
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrfToken },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      let answer = null;
      try {
        answer = text ? JSON.parse(text) : null;
      } catch {
        answer = { message: text };
      }
      if (!response.ok) {
        showApiErrors(response.status, answer);
        return;
      }
      location.assign(`/automations/${encodeURIComponent(answer.id)}`);
    } catch (error) {
      summarize([["", `Could not reach the server: ${error.message}`]]);
    } finally {
      button.disabled = false;
    }
  });

  // -- start
  const trigger = automation?.trigger;
  if (trigger && !formCanShow(trigger)) {
    input("trigger_json").value = JSON.stringify(trigger, null, 2);
    showTriggerMode("json");
  } else {
    fillTrigger(trigger ?? triggerBase);
  }
  const actions = automation?.actions ?? [{ type: "do-nothing" }];
  if (actions.every((action) => TYPE_LABELS[action.type])) fillActions(actions);
  else {
    input("actions_json").value = JSON.stringify(actions, null, 2);
    showActionsMode("json");
  }
  const extra = (key) => (automation?.[key]?.length ? JSON.stringify(automation[key], null, 2) : "");
  input("actions_on_trigger").value = extra("actions_on_trigger");
  input("actions_on_resolve").value = extra("actions_on_resolve");
  if (automation?.actions_on_trigger?.length || automation?.actions_on_resolve?.length) {
    form.querySelectorAll("#actions-section details.more").forEach((d) => (d.open = true));
  }
}

const form = document.getElementById("automation-form");
if (form) setUpForm(form);
