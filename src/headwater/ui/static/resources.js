// Dialog forms of the variables, secrets and concurrency-limits pages, declared in HTML:
//
// <button data-open="DIALOG" data-values='{"name": "x"}' data-load="/api/variables/x">
//   opens the dialog with its form reset, then filled from data-values and from the JSON
//   that data-load answers (when given).
// <form data-api="PATCH /api/variables/{name}" data-done="refresh:list-id" data-success="Saved">
//   is sent to the API as JSON; {field} in the path is that field's value, URL-encoded.
//   Each named field's data-kind says how its text becomes JSON: text (default), json,
//   tags (comma separated), int, number, bool (a checkbox). data-optional leaves an empty
//   field out; data-skip leaves the field out of the body (it may still be in the path);
//   data-json-if="CHECKBOX" parses the field as JSON while that checkbox is checked.
//   Problems go to the form's [data-form-error] and the fields' [data-error-for=NAME].
//
// Values are only ever put in form fields (.value) and messages in textContent. A form's
// fields are cleared when its dialog closes, so a secret typed there does not linger.

// The same module instance as the page's (base.html loads hw.js with this query string).
const { api, done, toast } = await import(`/static/hw.js${new URL(import.meta.url).search}`);

document.addEventListener("click", async (event) => {
  const opener = event.target.closest("[data-open]");
  if (opener) {
    event.preventDefault();
    await openDialog(opener);
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) {
    event.preventDefault();
    closer.closest("dialog")?.close();
  }
});

async function openDialog(opener) {
  const dialog = document.getElementById(opener.dataset.open);
  const form = dialog?.querySelector("form[data-api]");
  if (!form) return;
  form.reset();
  clearErrors(form);
  let values = opener.dataset.values ? JSON.parse(opener.dataset.values) : {};
  if (opener.dataset.load) {
    opener.disabled = true;
    try {
      values = { ...values, ...(await api("GET", opener.dataset.load)) };
    } catch (error) {
      toast(error.message, "error");
      return;
    } finally {
      opener.disabled = false;
    }
  }
  fill(form, values);
  dialog.showModal();
}

for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("close", () => {
    const form = dialog.querySelector("form[data-api]");
    if (form) {
      form.reset();
      clearErrors(form);
    }
  });
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  clearErrors(form);
  const { body, errors } = read(form);
  if (Object.keys(errors).length) {
    for (const [name, message] of Object.entries(errors)) showError(form, message, name);
    return;
  }
  const [method, template] = form.dataset.api.split(" ");
  const path = template.replace(/\{(\w+)\}/g, (_, name) =>
    encodeURIComponent(form.elements[name]?.value ?? ""),
  );
  const submit = form.querySelector('[type="submit"]');
  if (submit) submit.disabled = true;
  try {
    const result = await api(method, path, body);
    form.closest("dialog")?.close();
    if (form.dataset.success) toast(form.dataset.success);
    await done(form.dataset.done || "reload", result, form);
  } catch (error) {
    showError(form, error.message);
  } finally {
    if (submit) submit.disabled = false;
  }
});

/** The form's fields as a JSON body, and a message per field that could not be read. */
function read(form) {
  const body = {};
  const errors = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.dataset.skip !== undefined) continue;
    if (field.type === "submit" || field.type === "button") continue;
    let kind = field.dataset.kind || "text";
    const jsonIf = field.dataset.jsonIf;
    if (jsonIf && form.elements[jsonIf]?.checked) kind = "json";
    if (kind !== "bool" && field.dataset.optional !== undefined && field.value.trim() === "") {
      continue;
    }
    try {
      body[field.name] = convert(field, kind);
    } catch (error) {
      errors[field.name] = error.message;
    }
  }
  return { body, errors };
}

function convert(field, kind) {
  const text = field.value;
  switch (kind) {
    case "bool":
      return field.checked;
    case "json":
      if (text.trim() === "") throw new Error("Enter a JSON value (null for none).");
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new Error(`Not valid JSON (${error.message}). Text goes in double quotes: "eu-west-1".`);
      }
    case "tags":
      return text.split(",").map((tag) => tag.trim()).filter(Boolean);
    case "int":
    case "number": {
      const number = Number(text);
      if (text.trim() === "" || !Number.isFinite(number)) throw new Error("Enter a number.");
      if (kind === "int" && !Number.isInteger(number)) throw new Error("Enter a whole number.");
      return number;
    }
    default:
      return text;
  }
}

/** Put `values` in the form's fields of the same names (how depends on their data-kind). */
function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const field = form.elements[name];
    if (!field || field.type === "password") continue;
    const kind = field.dataset.kind || "text";
    if (kind === "bool") field.checked = Boolean(value);
    else if (kind === "json") {
      field.value = JSON.stringify(value, null, 2);
      field.setSelectionRange(0, 0); // show a long value from its start
    }
    else if (kind === "tags") field.value = (value || []).join(", ");
    else field.value = value ?? "";
  }
}

function showError(form, message, name) {
  const target =
    (name && form.querySelector(`[data-error-for="${CSS.escape(name)}"]`)) ||
    form.querySelector("[data-form-error]");
  if (!target) {
    toast(message, "error");
    return;
  }
  target.textContent = message;
  target.hidden = false;
  const field = name && form.elements[name];
  if (field) field.setAttribute("aria-invalid", "true");
}

function clearErrors(form) {
  for (const node of form.querySelectorAll("[data-error-for], [data-form-error]")) {
    node.textContent = "";
    if (node.hasAttribute("data-form-error")) node.hidden = true;
  }
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}
