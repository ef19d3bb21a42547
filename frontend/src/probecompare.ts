// The compare page's memory probes, side by side: for each variant (model) of a comparison,
// one probe of its first run with a final policy — how well a linear read-out of its memory
// recovers each variable the env hides, beside what the observation alone gives.

import { ApiError } from "./api";
import type { Variant } from "./compare";
import { h, render } from "./dom";
import { createReplay, getReplay, listReplays, type Replay } from "./replay";
import { errorBox } from "./widgets";

const POLL_MS = 1000;

interface Probed {
  label: string;
  jobId: string;
  probe: Replay | null;
}

/** The run that stands for each variant: the first with a final policy (none: the variant is left out). */
export function probedJobs(variants: Variant[]): { label: string; jobId: string }[] {
  return variants.flatMap((v) => {
    const run = v.runs.find((r) => r.job.has_policy);
    return run ? [{ label: v.label, jobId: run.job.id }] : [];
  });
}

async function latestProbe(jobId: string): Promise<Replay | null> {
  const { items } = await listReplays(jobId); // newest first
  const probe = items.find((r) => r.kind === "probe" && r.status !== "failed");
  return probe ? getReplay(probe.id) : null;
}

const score = (value: number | null | undefined) => (value === null || value === undefined ? "–" : value.toFixed(2));

function table(probed: Probed[]): HTMLElement {
  const ready = probed.filter((p) => p.probe?.status === "ready" && p.probe.data);
  const variables = ready[0]?.probe?.data?.variables ?? [];
  return h(
    "table",
    { class: "probe-table", "data-testid": "probe-compare-table" },
    h("thead", null, h("tr", null, h("th", null, "hidden variable"), probed.map((p) => h("th", { "data-variant": p.label }, p.label)))),
    h("tbody", null, variables.map((variable) =>
      h("tr", { "data-variable": variable.name },
        h("th", { title: variable.description }, `${variable.name} (${variable.metric === "r2" ? "R²" : "accuracy"})`),
        probed.map((p) => {
          const mine = p.probe?.data?.variables.find((v) => v.name === variable.name);
          if (!mine) return h("td", { class: "muted" }, p.probe ? p.probe.status : "not probed");
          return h("td", { "data-score": score(mine.state.overall) }, score(mine.state.overall), h("span", { class: "muted" }, ` (observation ${score(mine.observation?.overall)})`));
        }),
      ),
    )),
  );
}

/** Render the side-by-side probes into `el`; "Probe each model" asks for the missing ones and follows them. */
export async function renderProbeComparison(el: HTMLElement, variants: Variant[], stopped: () => boolean): Promise<void> {
  const jobs = probedJobs(variants);
  if (jobs.length < 2) {
    render(el);
    return;
  }
  const probed: Probed[] = await Promise.all(jobs.map(async (j) => ({ ...j, probe: await latestProbe(j.jobId) })));
  const notice = h("div");
  const body = h("div");
  const button = h("button", { type: "button", "data-action": "probe-all", disabled: probed.every((p) => p.probe) }, "Probe each model") as HTMLButtonElement;
  const pending = () => probed.some((p) => p.probe && (p.probe.status === "queued" || p.probe.status === "running"));

  async function follow(): Promise<void> {
    while (pending() && !stopped()) {
      await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
      for (const p of probed) {
        if (p.probe && p.probe.status !== "ready" && p.probe.status !== "failed") p.probe = await getReplay(p.probe.id);
      }
      render(body, table(probed));
    }
  }

  async function probeMissing(): Promise<void> {
    render(notice);
    try {
      for (const p of probed) {
        if (!p.probe) p.probe = await createReplay(p.jobId, { kind: "probe", policy: "final", seed: 0 });
      }
    } catch (error) {
      render(notice, errorBox(error instanceof ApiError ? error.message : (error as Error).message));
    }
    button.disabled = probed.every((p) => p.probe);
    render(body, table(probed));
    await follow();
  }
  button.onclick = probeMissing;

  render(
    el,
    h("h2", null, "Memory probes"),
    h("p", { class: "muted" }, "What a linear probe reads from each model's memory (R² or accuracy on held-out episodes), and from the observation alone. One probe per model, of its first finished seed."),
    h("div", { class: "actions" }, button),
    notice,
    body,
  );
  render(body, table(probed));
  await follow();
}
