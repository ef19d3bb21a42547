// Compare page: a group (or selected jobs) on one chart; per variant its seeds drawn faintly,
// their mean (or IQM) and a band (curvepanel.ts); x axis env steps or wall time; smoothing.
// A fork shown with its parent is drawn as a branch that leaves the parent's curve at its
// fork step.
// Live: GET /api/events (?group=) pushes job changes and new-point notices; the page then
// fetches the metrics of the jobs that changed, at most once per METRICS_THROTTLE_MS.

import { getGroup, getJob, getMetrics, listGroups } from "../api";
import { followJobs } from "../jobstream";
import { BAND_LABEL, parseBandKind, scoreIntervals, type BandKind } from "../bands";
import { finalValues, groupVariants, toWallTime, type Run, type Variant } from "../compare";
import type { CurveGroup } from "../curvedata";
import { bandSelect, CurvePanel } from "../curvepanel";
import { h, render } from "../dom";
import { dateTime } from "../format";
import { branchFrom } from "../lineage";
import { renderProbeComparison } from "../probecompare";
import { envsThatHide } from "../replaypanel";
import { href, replaceParams, type Route } from "../router";
import { intervalText } from "../studyview";
import { METRIC, type Job, type MetricsOut } from "../types";
import { errorBox, shortId, spinner, statusBadge } from "../widgets";

const MAX_POINTS = 1000;
const METRICS_THROTTLE_MS = 400;
const METRICS: Record<string, string> = {
  [METRIC.return]: "Episode return",
  [METRIC.evalReturn]: "Eval return",
  [METRIC.length]: "Episode length",
};

interface Settings {
  metric: string;
  x: "step" | "wall";
  band: BandKind;
  smoothing: number;
}

export function comparePage(root: HTMLElement, route: Route): () => void {
  const group = route.params.get("group");
  const ids = (route.params.get("jobs") ?? "").split(",").filter(Boolean);
  if (!group && ids.length === 0) {
    pickGroup(root);
    return () => {};
  }
  const settings: Settings = {
    metric: route.params.get("metric") ?? METRIC.return,
    x: route.params.get("x") === "wall" ? "wall" : "step",
    band: parseBandKind(route.params.get("band")),
    smoothing: Number(route.params.get("smooth") ?? "0.6"),
  };
  const title = h("h1", null, group ? `Group ${shortId(group)}` : `${ids.length} selected jobs`);
  const chartEl = h("div", { class: "chart" });
  const legend = h("ul", { class: "legend", "data-testid": "legend" });
  const summary = h("div");
  const probes = h("section", { class: "panel", "data-testid": "probe-compare" });
  const message = h("div");
  const panel = new CurvePanel(chartEl, legend);
  let jobs: Job[] = [];
  let metrics = new Map<string, MetricsOut>();
  let timer = 0;
  let stopped = false;
  let loaded = false;
  let probeGeneration = 0;
  const stale = new Set<string>(); // jobs whose metrics changed since they were fetched

  const controls = buildControls(settings, () => {
    replaceParams({ group: group ?? undefined, jobs: ids.join(",") || undefined, metric: settings.metric, x: settings.x, band: settings.band, smooth: settings.smoothing });
    draw();
  });

  render(
    root,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / compare"),
    h("div", { class: "page-head" }, title),
    controls,
    message,
    h("section", { class: "panel main" }, chartEl, legend),
    summary,
    probes,
  );
  render(message, spinner());

  function runs(): Run[] {
    return jobs.map((job) => {
      const m = metrics.get(job.id);
      // A fork shown with its parent branches off the parent's curve where it was forked.
      const parent = job.parent_id ? metrics.get(job.parent_id) : undefined;
      const joined = (key: string) => branchFrom(m?.series[key] ?? { steps: [], values: [] }, parent?.series[key], job.forked_at_step);
      const { series: s, lead } = joined(settings.metric);
      const xs = settings.x === "wall" ? toWallTime(s.steps, joined(METRIC.wallTime).series) : s.steps;
      return { job, xs, ys: s.values, lead };
    });
  }

  function draw(): void {
    const variants = groupVariants(runs());
    const xLabel = settings.x === "wall" ? "wall time (s)" : "env steps";
    panel.update(variants.map(curveGroup), { band: settings.band, smoothing: settings.smoothing, xLabel });
    render(summary, summaryTable(variants, settings.metric, settings.band));
  }

  /** Side-by-side memory probes, where the env hides part of its state and two variants have a policy. */
  async function drawProbes(): Promise<void> {
    const generation = ++probeGeneration; // a newer call takes over the element
    const env = jobs[0]?.spec.env_id;
    if (!env || !(await envsThatHide()).has(env) || jobs.some((job) => job.spec.env_id !== env)) return;
    try {
      await renderProbeComparison(probes, groupVariants(runs()), () => stopped || generation !== probeGeneration);
    } catch (error) {
      render(probes, errorBox(`Could not load the memory probes: ${(error as Error).message}`));
    }
  }

  const metricKeys = () => [...new Set([settings.metric in METRICS ? settings.metric : METRIC.return, ...Object.keys(METRICS), METRIC.wallTime])];

  async function load(): Promise<void> {
    window.clearTimeout(timer);
    timer = 0;
    stale.clear();
    try {
      if (group) {
        const g = await getGroup(group);
        jobs = g.jobs;
        if (g.name) title.textContent = g.name;
      } else {
        jobs = await Promise.all(ids.map(getJob));
      }
      const results = await Promise.all(jobs.map((job) => getMetrics(job.id, metricKeys(), MAX_POINTS)));
      metrics = new Map(results.map((m) => [m.job_id, m]));
      if (stopped) return;
      loaded = true;
      render(message);
      draw();
      void drawProbes();
    } catch (error) {
      render(message, errorBox(`Could not load the comparison: ${(error as Error).message}`));
    }
  }

  /** Fetch the metrics of the jobs marked stale, then redraw; throttled. */
  function refreshStale(): void {
    if (timer || !loaded) return;
    timer = window.setTimeout(async () => {
      const wanted = [...stale];
      stale.clear();
      try {
        const results = await Promise.all(wanted.map((id) => getMetrics(id, metricKeys(), MAX_POINTS)));
        for (const m of results) metrics.set(m.job_id, m);
        if (!stopped) draw();
      } catch (error) {
        render(message, errorBox(`Could not update the comparison: ${(error as Error).message}`));
      }
      timer = 0;
      if (stale.size && !stopped) refreshStale();
    }, METRICS_THROTTLE_MS);
  }

  function shown(id: string): boolean {
    return jobs.some((job) => job.id === id);
  }

  const close = followJobs(group, {
    onConnected: load,
    onFallback: load,
    onJob: (job) => {
      if (!shown(job.id)) return;
      const before = jobs.find((j) => j.id === job.id);
      jobs = jobs.map((j) => (j.id === job.id ? job : j));
      // A finished job's last points are stored before its status changes: fetch them.
      if (before?.status !== job.status) stale.add(job.id);
      if (before?.status !== job.status && job.status === "succeeded") void drawProbes();
      if (stale.size) refreshStale();
      else if (loaded) render(summary, summaryTable(groupVariants(runs()), settings.metric, settings.band));
    },
    onPoints: ({ job_id, last_step }) => {
      if (!shown(job_id) || (metrics.get(job_id)?.last_step ?? -1) >= last_step) return;
      stale.add(job_id);
      refreshStale();
    },
  });
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    close();
    panel.destroy();
  };
}

function buildControls(settings: Settings, changed: () => void): HTMLElement {
  const metric = h("select", { id: "c-metric" }, Object.entries(METRICS).map(([key, label]) => h("option", { value: key, selected: key === settings.metric }, label)));
  const x = h("select", { id: "c-x" }, h("option", { value: "step", selected: settings.x === "step" }, "env steps"), h("option", { value: "wall", selected: settings.x === "wall" }, "wall time"));
  const band = bandSelect("c-band", settings.band, (kind) => ((settings.band = kind), changed()));
  const smoothing = h("input", { id: "c-smooth", type: "range", min: "0", max: "0.99", step: "0.01", value: String(settings.smoothing) });
  const smoothValue = h("output", { for: "c-smooth" }, settings.smoothing.toFixed(2));
  metric.addEventListener("change", () => ((settings.metric = metric.value), changed()));
  x.addEventListener("change", () => ((settings.x = x.value as Settings["x"]), changed()));
  smoothing.addEventListener("input", () => {
    settings.smoothing = Number(smoothing.value);
    smoothValue.textContent = settings.smoothing.toFixed(2);
    changed();
  });
  return h(
    "form",
    { class: "filters", onsubmit: (e: Event) => e.preventDefault() },
    h("label", null, "Metric ", metric),
    h("label", null, "x axis ", x),
    h("label", null, "Band ", band),
    h("label", { class: "smoothing" }, "Smoothing ", smoothing, smoothValue),
  );
}

/** A variant as the curve panel draws it: its runs named by seed, a fork's with its parent's lead. */
function curveGroup(variant: Variant): CurveGroup {
  return { label: variant.label, runs: variant.runs.map((r) => ({ name: `seed ${r.job.spec.seed}`, xs: r.xs, ys: r.ys, lead: r.lead })) };
}

function summaryTable(variants: Variant[], metric: string, kind: BandKind): HTMLElement {
  // The interval is the band's method on the runs' final values; it arrives from the API.
  const scores = variants.map(() => h("td", { class: "num", "data-score": "final" }, "…"));
  scoreIntervals(variants.map(finalValues), kind).then(
    (found) => found.forEach((f, i) => render(scores[i], f ? intervalText({ point: f.center, low: f.lower, high: f.upper }) : "–")),
    (error: Error) => scores.forEach((td) => render(td, h("span", { title: error.message }, "–"))),
  );
  return h(
    "section",
    { class: "panel" },
    h("h2", null, `Final ${(METRICS[metric] ?? metric).toLowerCase()} (last 10% of each run)`),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "jobs" },
        h("thead", null, h("tr", null, h("th", null, "Variant"), h("th", { class: "num" }, "n"), h("th", { class: "num", title: BAND_LABEL[kind] }, kind === "minmax" ? "Mean [min, max]" : `${kind === "iqm" ? "IQM" : "Mean"} [95% CI]`), h("th", null, "Runs"))),
        h(
          "tbody",
          null,
          variants.map((v, i) =>
            h(
              "tr",
              null,
              h("td", null, h("strong", null, v.label)),
              h("td", { class: "num" }, String(v.runs.length)),
              scores[i],
              h("td", null, v.runs.map((r) => h("span", { class: "run" }, h("a", { href: `#/jobs/${r.job.id}` }, `seed ${r.job.spec.seed}`), " ", statusBadge(r.job.status)))),
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "hint" }, `Interval: ${BAND_LABEL[kind]}${kind === "minmax" ? "" : ", clipped to the runs' range"}, over each run's mean of its last 10% of points.`),
  );
}

function pickGroup(root: HTMLElement): void {
  const list = h("div", null, spinner());
  render(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Compare")),
    h("p", null, "Pick a group below, or tick jobs in the ", h("a", { href: "#/" }, "jobs table"), " and press “Compare selected”."),
    list,
  );
  listGroups().then(
    ({ items }) =>
      render(
        list,
        items.length === 0
          ? h("p", { class: "muted" }, "No groups yet. Submit one with more than one seed or model on the ", h("a", { href: "#/submit" }, "New job"), " page.")
          : h(
              "ul",
              { class: "groups" },
              items.map((g) =>
                h(
                  "li",
                  null,
                  h("a", { href: href("/compare", { group: g.id }) }, g.name ?? `Group ${shortId(g.id)}`),
                  ` — ${g.spec.algo} on ${g.spec.env_id}, models ${g.models.join(", ")}, ${g.seeds.length} seeds, ${dateTime(g.created_at)}`,
                ),
              ),
            ),
      ),
    (error) => render(list, errorBox(`Could not load groups: ${(error as Error).message}`)),
  );
}
