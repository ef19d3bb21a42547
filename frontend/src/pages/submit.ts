// The submit form, built from /api/envs and /api/models (TrainSpec's JSON schema, the
// fields each algorithm uses and their defaults). It shows and sends only the fields of
// the chosen algorithm. "Seeds" and "compare models" turn one job into a group.

import { ApiError, getModels, listEnvs, submitGroup, submitJob, type FieldError } from "../api";
import { h, render } from "../dom";
import { compact } from "../format";
import { navigate } from "../router";
import type { EnvInfo, FieldSchema, ModelsInfo } from "../types";
import { errorBox, spinner } from "../widgets";

const BASIC = ["algo", "model", "env_id", "total_steps", "seed", "num_envs", "device"];

export function submitPage(root: HTMLElement): void {
  render(root, spinner());
  Promise.all([getModels(), listEnvs()]).then(
    ([models, envs]) => buildForm(root, models, envs),
    (error) => render(root, errorBox(`Could not load the form: ${(error as Error).message}`)),
  );
}

interface Field {
  name: string;
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
  wrapper: HTMLElement;
}

function buildForm(root: HTMLElement, info: ModelsInfo, envs: EnvInfo[]): void {
  const props = info.spec_schema.properties;
  const fields = new Map<string, Field>();
  const formError = h("div", { class: "form-error", role: "alert" });
  const submitButton = h("button", { type: "submit", class: "primary" }, "Submit");

  // Env options (frame_stack, flicker, ...) apply only to the envs that list them.
  const envOptions = new Set(envs.flatMap((env) => env.options));
  let env: EnvInfo | undefined = envs.find((e) => e.id === (info.spec_defaults.env_id ?? props.env_id?.default));
  const defaultFor = (name: string, algo: string): unknown =>
    env?.defaults[algo]?.[name] ??
    info.algorithm_defaults[algo]?.[name] ??
    info.spec_defaults[name] ??
    props[name]?.default ??
    null;

  function field(name: string, label: string, input: Field["input"], hint: string | null = null): HTMLElement {
    input.id = `f-${name}`;
    input.name = name;
    const error = h("span", { class: "field-error", id: `e-${name}`, role: "alert" });
    input.setAttribute("aria-describedby", `e-${name}`);
    const wrapper = h(
      "div",
      { class: input instanceof HTMLInputElement && input.type === "checkbox" ? "field check" : "field", "data-field": name },
      h("label", { for: input.id }, label),
      input,
      hint === null ? null : h("span", { class: "hint" }, hint),
      error,
    );
    fields.set(name, { name, input, error, wrapper });
    return wrapper;
  }

  const select = (options: string[], value: unknown) =>
    h("select", null, options.map((o) => h("option", { value: o, selected: o === value }, o)));

  function specField(name: string, algo: string): HTMLElement {
    const schema = props[name];
    const value = defaultFor(name, algo);
    const label = LABELS[name] ?? schema.title ?? name;
    if (name === "algo") return field(name, label, select(info.algorithms, value));
    if (name === "model") return field(name, label, select(info.models, value));
    if (name === "device") return field(name, label, select(info.devices, value), schema.description ?? null);
    if (name === "env_id") {
      const input = h("select", null, envs.map((env) => h("option", { value: env.id, selected: env.id === value }, env.needs_memory ? `${env.id} (needs memory)` : env.id)));
      const wrapper = field(name, label, input, "");
      const hint = wrapper.querySelector(".hint")!;
      const describe = () => (hint.textContent = envs.find((e) => e.id === input.value)?.description ?? "");
      input.addEventListener("change", describe);
      describe();
      return wrapper;
    }
    // Any other choice among named values (encoder: dense | none) is a select, too.
    if (schema.enum) return field(name, label, select(schema.enum, value), schema.description ?? null);
    const type = typeOf(schema);
    if (type === "boolean") return field(name, label, h("input", { type: "checkbox", checked: value === true }), schema.description ?? null);
    const input = h("input", {
      type: "number",
      step: type === "integer" ? "1" : "any",
      value: value === null ? "" : String(value),
      placeholder: value === null ? "default" : "",
    });
    return field(name, label, input, [schema.description, bounds(schema)].filter(Boolean).join(" ") || null);
  }

  const algo = info.algorithm_defaults.ppo ? "ppo" : info.algorithms[0];
  const seeds = h("input", { type: "number", step: "1", min: "1", max: "20", value: "1" });
  const compare = info.models.map((m) => h("input", { type: "checkbox", value: m, name: "compare" }));
  const compareBox = h(
    "fieldset",
    { class: "field compare", "data-field": "models" },
    h("legend", null, "Compare models"),
    h("div", { class: "checks" }, compare.map((box) => h("label", null, box, ` ${box.value}`))),
    h("span", { class: "hint" }, "Tick two or more to launch one job per model and seed, as a group."),
    h("span", { class: "field-error", id: "e-models", role: "alert" }),
  );

  const advanced = Object.keys(props).filter((name) => !BASIC.includes(name));
  const form = h(
    "form",
    { class: "submit-form", novalidate: true },
    h("div", { class: "grid" }, field("name", "Name", h("input", { type: "text", maxLength: 200, placeholder: "optional" })), field("tags", "Tags", h("input", { type: "text", placeholder: "comma separated, optional" }))),
    h("div", { class: "grid" }, BASIC.filter((n) => props[n]).map((n) => specField(n, algo))),
    h("div", { class: "grid" }, field("seeds", "Seeds", seeds, "Runs with seeds seed, seed+1, …; more than one makes a group."), compareBox),
    h("details", null, h("summary", null, "Hyperparameters"), h("div", { class: "grid" }, advanced.map((n) => specField(n, algo)))),
    formError,
    h("div", { class: "actions" }, submitButton),
  );

  // A new algorithm or env shows only the fields they use, with their own defaults.
  const algoInput = fields.get("algo")!.input;
  const envInput = fields.get("env_id")!.input;
  const encoderInput = fields.get("encoder")?.input;
  // Pixel frames are scaled by the CNN: observation normalisation is for vector envs only.
  const applies = (name: string): boolean =>
    (info.algorithm_fields[algoInput.value]?.includes(name) ?? true) &&
    (!envOptions.has(name) || (env?.options.includes(name) ?? false)) &&
    !(name === "normalize_obs" && (env?.pixels ?? false));
  const showFields = () => {
    for (const name of Object.keys(props)) {
      const f = fields.get(name);
      if (f) f.wrapper.hidden = !applies(name);
    }
    // Frames go through the CNN; vectors through the dense layer or straight to the core.
    for (const option of encoderInput?.querySelectorAll("option") ?? []) option.hidden = (option.value === "cnn") !== (env?.pixels ?? false);
  };
  const resetDefaults = (names: Iterable<string>) => {
    for (const name of names) {
      const f = fields.get(name);
      if (f) setValue(f.input, defaultFor(name, algoInput.value));
    }
  };
  const dependent = (algo = algoInput.value): string[] => [...Object.keys(info.algorithm_defaults[algo] ?? {}), ...Object.keys(env?.defaults[algo] ?? {})];
  // A field that only the previous algorithm set a default for (PPO's normalize_obs) goes
  // back to the new algorithm's default too.
  let shownAlgo = algoInput.value;
  algoInput.addEventListener("change", () => {
    resetDefaults(new Set([...dependent(shownAlgo), ...dependent()]));
    shownAlgo = algoInput.value;
    showFields();
  });
  envInput.addEventListener("change", () => {
    const before = dependent();
    env = envs.find((e) => e.id === envInput.value);
    resetDefaults(new Set([...before, ...dependent()]));
    showFields();
  });
  showFields();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const f of fields.values()) render(f.error);
    render(compareBox.querySelector(".field-error")!);
    render(formError);
    const spec: Record<string, unknown> = {};
    for (const name of Object.keys(props)) {
      const f = fields.get(name);
      if (!f || !applies(name)) continue;
      const value = readValue(f.input);
      if (value !== null) spec[name] = value;
    }
    const name = (fields.get("name")!.input.value || "").trim() || undefined;
    const tags = fields.get("tags")!.input.value.split(",").map((t) => t.trim()).filter(Boolean);
    const n = Number(seeds.value || "1");
    const models = compare.filter((box) => box.checked).map((box) => box.value);
    submitButton.disabled = true;
    try {
      if (n > 1 || models.length > 0) {
        if (models.length) spec.model = models[0];
        const seed0 = Number(spec.seed ?? 0);
        const list = Number.isInteger(n) && n > 0 ? Array.from({ length: n }, (_, i) => seed0 + i) : [n];
        const group = await submitGroup({ spec, name, tags, seeds: list, models: models.length ? models : null });
        navigate("/compare", { group: group.id });
      } else {
        navigate(`/jobs/${(await submitJob({ spec, name, tags })).id}`);
      }
    } catch (error) {
      showErrors(error, fields, compareBox, formError);
    } finally {
      submitButton.disabled = false;
    }
  });

  render(root, h("div", { class: "page-head" }, h("h1", null, "New job")), h("section", { class: "card" }, form));
}

/** Put each 422 message beside its field; messages without a field go above the button. */
function showErrors(error: unknown, fields: Map<string, Field>, compareBox: HTMLElement, formError: HTMLElement): void {
  if (!(error instanceof ApiError) || error.fieldErrors.length === 0) {
    render(formError, errorBox(error instanceof Error ? error.message : String(error)));
    return;
  }
  const general: FieldError[] = [];
  let first: HTMLElement | null = null;
  for (const e of error.fieldErrors) {
    // Errors of the whole spec ("bptt_length must not exceed ...") go to the first field they name.
    const name = e.field ?? [...fields.keys()].find((f) => new RegExp(`\\b${f}\\b`).test(e.message)) ?? null;
    const slot = name === "models" ? compareBox.querySelector<HTMLElement>(".field-error") : name ? fields.get(name)?.error : null;
    if (!slot) {
      general.push(e);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${e.message}` : e.message;
    first ??= slot.closest<HTMLElement>("[data-field]");
  }
  if (general.length) render(formError, errorBox(general.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("\n")));
  if (first) {
    first.closest("details")?.setAttribute("open", "");
    first.scrollIntoView({ block: "center" });
    first.querySelector<HTMLElement>("input, select")?.focus();
  }
}

function typeOf(schema: FieldSchema): string | undefined {
  return schema.type ?? schema.anyOf?.find((s) => s.type !== "null")?.type;
}

function bounds(schema: FieldSchema): string {
  const s = schema.anyOf?.find((x) => x.type !== "null") ?? schema;
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  if (lo === undefined && hi === undefined) return "";
  const left = lo === undefined ? "" : `${s.exclusiveMinimum !== undefined ? ">" : "≥"} ${compact(lo)}`;
  const right = hi === undefined ? "" : `≤ ${compact(hi)}`;
  return `(${[left, right].filter(Boolean).join(", ")})`;
}

function setValue(input: Field["input"], value: unknown): void {
  if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = value === true;
  else input.value = value === null || value === undefined ? "" : String(value);
}

function readValue(input: Field["input"]): unknown {
  if (input instanceof HTMLInputElement && input.type === "checkbox") return input.checked;
  if (input.value.trim() === "") return null;
  if (input instanceof HTMLInputElement && input.type === "number") return Number(input.value);
  return input.value;
}

const LABELS: Record<string, string> = {
  algo: "Algorithm",
  model: "Model",
  env_id: "Environment",
  total_steps: "Total env steps",
  num_envs: "Parallel envs",
  learning_rate: "Learning rate",
  anneal_lr: "Anneal learning rate",
  gae_lambda: "GAE λ",
  gamma: "Discount γ",
  ent_coef: "Entropy coef.",
  vf_coef: "Value coef.",
  clip_range: "Clip range",
  target_kl: "Target KL",
  bptt_length: "BPTT length",
};
