// Forms generated from a JSON schema (deployment parameters, pause input models).
//
//   const form = jsonForm(container, schema, values);
//   const { ok, value, errors } = form.read();   // errors are shown next to their fields
//
// Strings, numbers, integers, booleans, enums, dates and date-times get their own inputs;
// arrays and objects (and anything else) are edited as JSON. Optional fields left empty
// are left out of the value, so the server's defaults apply.

export function jsonForm(container, schema, values = {}) {
  const root = resolve(schema, schema) || {};
  const properties = root.properties || {};
  const required = new Set(root.required || []);
  const fields = [];
  container.replaceChildren();
  const names = Object.keys(properties).sort(
    (a, b) => (properties[a].position ?? 0) - (properties[b].position ?? 0),
  );
  if (!names.length) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "No parameters.";
    container.append(none);
  }
  for (const name of names) {
    const field = makeField(name, resolve(properties[name], schema), required.has(name), values[name]);
    container.append(field.element);
    fields.push(field);
  }
  return {
    read() {
      const value = {};
      const errors = {};
      for (const field of fields) {
        field.setError("");
        try {
          const item = field.read();
          if (item !== undefined) value[field.name] = item;
        } catch (error) {
          errors[field.name] = error.message;
          field.setError(error.message);
        }
      }
      return { ok: Object.keys(errors).length === 0, value, errors };
    },
    /** Show the server's validation errors ({loc, msg} items) next to their fields. */
    showErrors(detail) {
      for (const item of detail || []) {
        const name = (item.loc || []).find((part) => fields.some((f) => f.name === part));
        const field = fields.find((f) => f.name === name);
        if (field) field.setError(item.msg);
      }
    },
  };
}

/** Follow `$ref`s into `definitions`/`$defs`; unwrap `anyOf: [X, {type: null}]`. */
function resolve(node, schema) {
  let current = node || {};
  for (let depth = 0; depth < 20 && current.$ref; depth += 1) {
    const path = current.$ref.replace(/^#\//, "").split("/");
    let target = schema;
    for (const part of path) target = target?.[part];
    current = { ...(target || {}), ...withoutRef(current) };
  }
  for (const key of ["anyOf", "oneOf"]) {
    const options = current[key];
    if (Array.isArray(options)) {
      const real = options.filter((o) => o.type !== "null");
      if (real.length === 1) {
        const { [key]: _, ...rest } = current;
        return { ...resolve(real[0], schema), ...rest, nullable: real.length < options.length };
      }
    }
  }
  if (Array.isArray(current.allOf) && current.allOf.length === 1) {
    const { allOf, ...rest } = current;
    return { ...resolve(allOf[0], schema), ...rest };
  }
  return current;
}

function withoutRef(node) {
  const { $ref, ...rest } = node;
  return rest;
}

function kindOf(property) {
  if (Array.isArray(property.enum)) return "enum";
  const type = Array.isArray(property.type) ? property.type.find((t) => t !== "null") : property.type;
  if (type === "string" && property.format === "date-time") return "datetime";
  if (type === "string" && property.format === "date") return "date";
  if (["string", "integer", "number", "boolean"].includes(type)) return type;
  return "json";
}

function makeField(name, property, isRequired, given) {
  const kind = kindOf(property);
  const initial = given !== undefined ? given : property.default;
  const element = document.createElement("div");
  element.className = "field";
  element.dataset.field = name;
  const label = document.createElement("label");
  label.textContent = property.title || name;
  if (isRequired) label.textContent += " *";
  const id = `field-${name}-${Math.random().toString(36).slice(2, 8)}`;
  label.htmlFor = id;
  let input;
  if (kind === "enum") {
    input = document.createElement("select");
    if (!isRequired) input.append(new Option("", ""));
    for (const option of property.enum) {
      input.append(new Option(String(option), JSON.stringify(option)));
    }
    if (initial !== undefined) input.value = JSON.stringify(initial);
  } else if (kind === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(initial);
  } else if (kind === "json") {
    input = document.createElement("textarea");
    input.rows = 4;
    if (initial !== undefined) input.value = JSON.stringify(initial, null, 2);
  } else {
    input = document.createElement("input");
    input.type = { integer: "number", number: "number", datetime: "datetime-local", date: "date" }[kind] || "text";
    if (kind === "integer") input.step = "1";
    if (kind === "number") input.step = "any";
    if (initial !== undefined && initial !== null) {
      input.value = kind === "datetime" ? String(initial).replace(/Z$|[+-]\d\d:\d\d$/, "").slice(0, 19) : String(initial);
    }
  }
  input.id = id;
  input.name = name;
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = [property.description, kind === "json" ? "JSON" : ""].filter(Boolean).join(" · ");
  const error = document.createElement("span");
  error.className = "error";
  error.setAttribute("role", "alert");
  element.append(label, input);
  if (hint.textContent) element.append(hint);
  element.append(error);

  function read() {
    if (kind === "boolean") return input.checked;
    const raw = input.value;
    if (raw === "") {
      if (isRequired && property.default === undefined) throw new Error(`${label.textContent.replace(/ \*$/, "")} is required`);
      return undefined;
    }
    if (kind === "enum") return JSON.parse(raw);
    if (kind === "integer") {
      const number = Number(raw);
      if (!Number.isInteger(number)) throw new Error(`${raw} is not a whole number`);
      return check(number);
    }
    if (kind === "number") {
      const number = Number(raw);
      if (!Number.isFinite(number)) throw new Error(`${raw} is not a number`);
      return check(number);
    }
    if (kind === "datetime") return new Date(raw).toISOString();
    if (kind === "json") {
      try {
        return JSON.parse(raw);
      } catch (error) {
        throw new Error(`not valid JSON: ${error.message}`);
      }
    }
    if (property.minLength !== undefined && raw.length < property.minLength) {
      throw new Error(`at least ${property.minLength} characters`);
    }
    if (property.pattern && !new RegExp(property.pattern).test(raw)) {
      throw new Error(`must match ${property.pattern}`);
    }
    return raw;
  }

  function check(number) {
    if (property.minimum !== undefined && number < property.minimum) throw new Error(`at least ${property.minimum}`);
    if (property.maximum !== undefined && number > property.maximum) throw new Error(`at most ${property.maximum}`);
    return number;
  }

  return {
    name,
    element,
    read,
    setError(message) {
      error.textContent = message;
      input.setAttribute("aria-invalid", message ? "true" : "false");
    },
  };
}
