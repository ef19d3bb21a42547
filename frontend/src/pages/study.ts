// A study: a row per cell (its axis values, progress over its seeds, score with intervals),
// the best configuration per env, performance profiles, the curves of the selected cells,
// export, cancel and delete. Live: GET /api/events?study= says when a job changed or has new
// points; the page then fetches the study again (at most once per REFRESH_MS, longer when
// the study is slow to score) and the metrics of the shown runs that changed.

import { ApiError, download, getMetrics } from "../api";
import type { CurveGroup } from "../curvedata";
import { bandSelect, CurvePanel } from "../curvepanel";
import { parseBandKind, type BandKind } from "../bands";
import { h, render } from "../dom";
import { compact, dateTime, duration } from "../format";
import { followJobs } from "../jobstream";
import { ProfileChart } from "../profilechart";
import { navigate, replaceParams, type Route } from "../router";
import { cancelStudy, deleteStudy, getProfiles, getStudy, SCORE_LABEL, SCORE_METRICS, type ScoreMetric, type Study, type StudyCell } from "../studyapi";
import { intervalText, runsText, sortCells, StepRate, valueText, type Sort, type SortKey } from "../studyview";
import { METRIC, type MetricsOut } from "../types";
import { errorBox, liveBadge, shortId, spinner } from "../widgets";

const REFRESH_MS = 1000;
const METRICS_THROTTLE_MS = 500;
const MAX_POINTS = 1000;
/** With no cell ticked, the curves chart shows every cell if there are at most this many. */
const ALL_CURVES_UP_TO = 8;
const CURVE_METRICS: Record<string, string> = { [METRIC.return]: "Episode return", [METRIC.evalReturn]: "Eval return" };

interface Settings {
  metric: ScoreMetric;
  sort: Sort;
  curve: string;
  band: BandKind;
  smoothing: number;
}

export function studyPage(root: HTMLElement, route: Route): () => void {
  const id = route.id!;
  const sortKey = route.params.get("sort") as SortKey | null;
  const settings: Settings = {
    metric: SCORE_METRICS.includes(route.params.get("metric") as ScoreMetric) ? (route.params.get("metric") as ScoreMetric) : "final",
    sort: { key: sortKey === "mean" || sortKey === "iqm" ? sortKey : "index", descending: route.params.get("order") !== "asc" && sortKey !== null },
    curve: route.params.get("curve") === METRIC.evalReturn ? METRIC.evalReturn : METRIC.return,
    band: parseBandKind(route.params.get("band")),
    smoothing: Number(route.params.get("smooth") ?? "0.6"),
  };
  const selected = new Set((route.params.get("cells") ?? "").split(",").filter((c) => /^\d+$/.test(c)).map(Number));
  const rate = new StepRate();
  const head = h("div", { class: "page-head" });
  const meta = h("p", { class: "meta" });
  const overall = h("div", { class: "study-progress" });
  const notice = h("div");
  const best = h("section", { class: "panel best", "data-testid": "best" });
  const table = h("div", { class: "table-wrap" });
  const profileEl = h("div", { class: "chart" });
  const profileLegend = h("ul", { class: "legend" });
  const profileCaption = h("p", { class: "hint" });
  const profiles = new ProfileChart(profileEl, profileLegend, profileCaption);
  const curvesEl = h("div", { class: "chart" });
  const curvesLegend = h("ul", { class: "legend", "data-testid": "curves-legend" });
  const curvesHint = h("p", { class: "hint" });
  const curves = new CurvePanel(curvesEl, curvesLegend, 320);
  const { badge: live, onLive } = liveBadge();
  let study: Study | null = null;
  const metrics = new Map<string, MetricsOut>();
  const stale = new Set<string>(); // shown runs whose points changed since they were fetched
  let stopped = false;
  let refreshTimer = 0;
  let refreshAgain = false;
  let refreshGap = REFRESH_MS;
  let metricsTimer = 0;
  let studyAsked = 0;
  let studyShown = 0;
  let profilesAsked = 0;
  let drawnKey: string | null = null;

  render(root, spinner());

  function keepParams(): void {
    replaceParams({
      metric: settings.metric === "final" ? undefined : settings.metric,
      sort: settings.sort.key === "index" ? undefined : settings.sort.key,
      order: settings.sort.key === "index" ? undefined : settings.sort.descending ? "desc" : "asc",
      cells: [...selected].sort((a, b) => a - b).join(",") || undefined,
      curve: settings.curve === METRIC.return ? undefined : settings.curve,
      band: settings.band,
      smooth: settings.smoothing,
    });
  }

  /** The cells whose curves and profiles are drawn: the ticked ones, or all of a small study. */
  function shownCells(): StudyCell[] {
    if (!study) return [];
    if (selected.size) return study.cells.filter((c) => selected.has(c.index));
    return study.cells.length <= ALL_CURVES_UP_TO ? study.cells : [];
  }

  async function act(action: "csv" | "json" | "cancel" | "delete"): Promise<void> {
    if (!study) return;
    render(notice);
    try {
      if (action === "csv" || action === "json") {
        await download(`/api/studies/${id}/scores.${action}`, `study-${shortId(id)}-scores.${action}`);
      } else if (action === "cancel") {
        if (!window.confirm("Cancel every unfinished job of this study? Finished runs keep their scores.")) return;
        show(await cancelStudy(id));
      } else {
        if (!window.confirm("Delete this study with all its jobs, their metrics and policy files?")) return;
        await deleteStudy(id);
        navigate("/studies");
      }
    } catch (error) {
      render(notice, errorBox(error instanceof ApiError ? error.message : `Failed: ${(error as Error).message}`));
    }
  }

  function show(next: Study): void {
    study = next;
    const now = performance.now();
    rate.record("study", next.progress.steps, now);
    for (const cell of next.cells) rate.record(String(cell.index), cell.progress.steps, now);
    renderHead(head, next, live, act);
    render(meta, designText(next));
    const eta = next.status === "finished" ? null : rate.eta("study", next.progress.total_steps);
    render(overall, progressLine(next.progress.percent, eta, "study-bar"));
    renderBest(best, next);
    renderTable();
  }

  function renderTable(): void {
    if (!study) return;
    const s = study;
    const metric = settings.metric;
    const sortButton = (key: SortKey, label: string) => {
      const active = settings.sort.key === key;
      return h(
        "th",
        { class: key === "index" ? "" : "num", "aria-sort": active ? (settings.sort.descending ? "descending" : "ascending") : "none" },
        h(
          "button",
          {
            type: "button",
            class: "sort",
            "data-sort": key,
            onclick: () => {
              settings.sort = active ? { key, descending: !settings.sort.descending } : { key, descending: key !== "index" };
              keepParams();
              renderTable();
            },
          },
          label,
          active ? (settings.sort.descending ? " ▼" : " ▲") : "",
        ),
      );
    };
    const rows = sortCells(s.cells, settings.sort, metric).map((cell) => {
      const agg = cell.scores[metric];
      const box = h("input", {
        type: "checkbox",
        checked: selected.has(cell.index),
        "aria-label": `Select cell ${cell.index} (${cell.label})`,
        onchange: () => {
          if (box.checked) selected.add(cell.index);
          else selected.delete(cell.index);
          keepParams();
          drawCurves();
          loadProfiles();
        },
      });
      const running = cell.progress.jobs.running + cell.progress.jobs.queued > 0;
      const eta = running ? rate.eta(String(cell.index), cell.progress.total_steps) : null;
      return h(
        "tr",
        { "data-cell": cell.index, "data-n": agg.n, class: cell.is_best ? "best" : null },
        h("td", { class: "select" }, box),
        h("td", null, String(cell.index)),
        s.fields.map((f) => h("td", { class: "axis" }, valueText(cell.values[f]))),
        h("td", { class: "c-progress" }, progressLine(cell.progress.percent, eta)),
        h("td", { class: "runs" }, runsText(cell)),
        h("td", { class: "num" }, String(agg.n), cell.partial && agg.n ? h("span", { class: "muted", title: "Some runs are unfinished: scores so far" }, "*") : null),
        h("td", { class: "num score", "data-score": "mean" }, intervalText(agg.mean)),
        h("td", { class: "num score", "data-score": "iqm" }, intervalText(agg.iqm), cell.is_best ? h("span", { class: "best-mark", title: `Best of ${cell.env_id}` }, " ★") : null),
        h("td", { class: "num" }, cell.is_best ? "best" : intervalText(cell.best_improvement)),
      );
    });
    render(
      table,
      h(
        "table",
        { class: "jobs cells" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { class: "select" }, h("span", { class: "visually-hidden" }, "Select")),
            sortButton("index", "#"),
            s.fields.map((f) => h("th", null, f)),
            h("th", null, "Progress"),
            h("th", null, "Runs"),
            h("th", { class: "num" }, "n"),
            sortButton("mean", `Mean ${SCORE_LABEL[metric]} [95% CI]`),
            sortButton("iqm", `IQM ${SCORE_LABEL[metric]} [95% CI]`),
            h("th", { class: "num", title: "Probability that a run of the best cell of this env beats a run of this cell" }, "P(best > cell)"),
          ),
        ),
        h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 9 + s.fields.length, class: "empty" }, "No cells."))),
      ),
    );
  }

  function loadProfiles(): void {
    if (!study) return;
    const cells = selected.size ? [...selected].sort((a, b) => a - b) : null;
    const asked = ++profilesAsked;
    getProfiles(id, settings.metric, cells).then(
      (out) => !stopped && asked === profilesAsked && profiles.show(out), // only the latest question's answer
      (error: Error) => render(profileCaption, errorBox(`Could not load the profiles: ${error.message}`)),
    );
  }

  /** Which runs the curves chart shows: it is drawn again when they change or their points do. */
  const shownKey = () => shownCells().flatMap((c) => c.runs.map((r) => r.job_id)).join();

  function drawCurves(): void {
    const cells = shownCells();
    drawnKey = shownKey();
    render(
      curvesHint,
      cells.length === 0
        ? "Tick cells in the table to draw their curves."
        : selected.size
          ? `${cells.length} selected cell${cells.length > 1 ? "s" : ""}; each line is its seeds' ${settings.band === "iqm" ? "IQM" : "mean"}.`
          : "Every cell; tick cells in the table to draw only those.",
    );
    const wanted = cells.flatMap((c) => c.runs.map((r) => r.job_id)).filter((j) => !metrics.has(j));
    if (wanted.length) {
      wanted.forEach((j) => stale.add(j));
      fetchStale();
      return;
    }
    const groups: CurveGroup[] = cells.map((cell) => ({
      label: cell.label || `cell ${cell.index}`,
      runs: cell.runs.map((run) => {
        const series = metrics.get(run.job_id)?.series[settings.curve] ?? { steps: [], values: [] };
        return { name: `seed ${run.seed}`, xs: series.steps, ys: series.values };
      }),
    }));
    curves.update(groups, { band: settings.band, smoothing: settings.smoothing, xLabel: "env steps" });
  }

  /** Fetch the metrics of the stale runs, then redraw the curves; throttled. */
  function fetchStale(): void {
    if (metricsTimer) return;
    metricsTimer = window.setTimeout(async () => {
      const ids = [...stale];
      stale.clear();
      let failed = false;
      try {
        const results = await Promise.all(ids.map((j) => getMetrics(j, Object.keys(CURVE_METRICS), MAX_POINTS)));
        for (const m of results) metrics.set(m.job_id, m);
      } catch (error) {
        failed = true; // tried again on the next change the stream reports
        render(curvesHint, errorBox(`Could not load the curves: ${(error as Error).message}`));
      }
      metricsTimer = 0;
      if (stopped || failed) return;
      if (stale.size) fetchStale();
      else drawCurves();
    }, metrics.size ? METRICS_THROTTLE_MS : 0);
  }

  async function refresh(): Promise<void> {
    const started = performance.now();
    const asked = ++studyAsked;
    try {
      const next = await getStudy(id, settings.metric);
      if (stopped || asked < studyShown) return; // a later refresh already showed newer data
      studyShown = asked;
      if (!study) mount();
      show(next);
      loadProfiles();
      if (shownKey() !== drawnKey) drawCurves();
    } catch (error) {
      if (!study) {
        const text = error instanceof ApiError && error.status === 404 ? "No such study (or it belongs to another user)." : (error as Error).message;
        render(root, h("section", { class: "card" }, h("h1", null, "Study not found"), errorBox(text), h("a", { href: "#/studies" }, "Back to the studies")));
        stopped = true;
        close();
        return;
      }
      render(notice, errorBox(`Could not update the study: ${(error as Error).message}`));
    }
    // A large study takes a while to score: ask again no sooner than twice that.
    refreshGap = Math.max(REFRESH_MS, 2 * (performance.now() - started));
  }

  /** Refresh at most once per refreshGap; a change meanwhile gets one more refresh after it. */
  function scheduleRefresh(): void {
    if (refreshTimer) {
      refreshAgain = true;
      return;
    }
    refreshTimer = window.setTimeout(async () => {
      await refresh();
      refreshTimer = 0;
      if (refreshAgain && !stopped) {
        refreshAgain = false;
        scheduleRefresh();
      }
    }, refreshGap);
  }

  function mount(): void {
    const scoreSelect = h("select", { id: "s-metric" }, SCORE_METRICS.map((m) => h("option", { value: m, selected: m === settings.metric }, SCORE_LABEL[m])));
    scoreSelect.addEventListener("change", () => {
      settings.metric = scoreSelect.value as ScoreMetric;
      keepParams();
      refresh();
    });
    const curveSelect = h("select", { id: "s-curve" }, Object.entries(CURVE_METRICS).map(([k, label]) => h("option", { value: k, selected: k === settings.curve }, label)));
    curveSelect.addEventListener("change", () => {
      settings.curve = curveSelect.value;
      keepParams();
      drawCurves();
    });
    const band = bandSelect("s-band", settings.band, (kind) => {
      settings.band = kind;
      keepParams();
      drawCurves();
    });
    const smoothing = h("input", { id: "s-smooth", type: "range", min: "0", max: "0.99", step: "0.01", value: String(settings.smoothing) });
    const smoothValue = h("output", { for: "s-smooth" }, settings.smoothing.toFixed(2));
    smoothing.addEventListener("input", () => {
      settings.smoothing = Number(smoothing.value);
      smoothValue.textContent = settings.smoothing.toFixed(2);
      keepParams();
      drawCurves();
    });
    render(
      root,
      h("p", { class: "crumbs" }, h("a", { href: "#/studies" }, "Studies"), " / ", shortId(id)),
      head,
      meta,
      overall,
      notice,
      best,
      h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault() }, h("label", null, "Score ", scoreSelect)),
      table,
      h(
        "div",
        { class: "study-charts" },
        h("section", { class: "panel profile", "data-testid": "profile" }, h("h2", null, "Performance profile"), profileEl, profileLegend, profileCaption),
        h(
          "section",
          { class: "panel curves", "data-testid": "curves" },
          h("h2", null, "Curves"),
          h(
            "form",
            { class: "filters", onsubmit: (e: Event) => e.preventDefault() },
            h("label", null, "Metric ", curveSelect),
            h("label", null, "Band ", band),
            h("label", { class: "smoothing" }, "Smoothing ", smoothing, smoothValue),
          ),
          curvesHint,
          curvesEl,
          curvesLegend,
        ),
      ),
    );
  }

  const inStudy = (jobId: string) => study?.cells.some((c) => c.runs.some((r) => r.job_id === jobId)) ?? false;
  const shownRun = (jobId: string) => shownCells().some((c) => c.runs.some((r) => r.job_id === jobId));

  const close = followJobs(
    { study: id },
    {
      onConnected: () => void refresh(),
      onFallback: () => void refresh(),
      onJob: (job) => {
        if (!inStudy(job.id)) return;
        // A finished job's last points are stored before its status changes: fetch them (also
        // when a first fetch is on its way: it may have left before them).
        if (shownRun(job.id)) {
          stale.add(job.id);
          fetchStale();
        }
        scheduleRefresh();
      },
      onPoints: ({ job_id, last_step }) => {
        if (!inStudy(job_id)) return;
        if (shownRun(job_id) && (metrics.get(job_id)?.last_step ?? -1) < last_step) {
          stale.add(job_id);
          fetchStale();
        }
        scheduleRefresh();
      },
      onLive,
    },
  );
  return () => {
    stopped = true;
    window.clearTimeout(refreshTimer);
    window.clearTimeout(metricsTimer);
    close();
    profiles.destroy();
    curves.destroy();
  };
}

type Action = "csv" | "json" | "cancel" | "delete";

function renderHead(el: HTMLElement, study: Study, live: HTMLElement, act: (action: Action) => void): void {
  const finished = study.status === "finished";
  const unfinished = study.progress.jobs.queued + study.progress.jobs.running;
  const button = (action: Action, label: string, enabled: boolean, extra = "") =>
    h("button", { type: "button", class: extra, disabled: !enabled, "data-action": action, onclick: () => act(action) }, label);
  const key = [study.status, unfinished].join();
  if (el.dataset.key === key && el.firstChild) return; // unchanged: keep the buttons (and focus)
  el.dataset.key = key;
  render(
    el,
    h("div", { class: "title-row" }, h("h1", null, study.name ?? `Study ${shortId(study.id)}`), h("span", { class: `badge study-${study.status}`, "data-status": study.status }, study.status), live),
    h(
      "div",
      { class: "actions" },
      button("csv", "Scores CSV", true),
      button("json", "Scores JSON", true),
      button("cancel", "Cancel", !finished, "danger"),
      button("delete", "Delete", finished, "danger subtle"),
    ),
  );
}

function designText(study: Study): string {
  const spec = study.spec as Record<string, unknown>;
  const base = [spec.algo, spec.env_id].filter(Boolean).join(" on ");
  const size = `${study.cells_count} cells × ${study.seeds.length} seeds = ${study.jobs_count} runs`;
  const search = study.search === "random" ? `random search (${study.samples} samples, study seed ${study.study_seed})` : "grid";
  const axes = study.fields.length ? ` over ${study.fields.join(", ")}` : "";
  return `${search}${axes} · ${size}${base ? ` · ${base}` : ""} · created ${dateTime(study.created_at)}`;
}

function progressLine(percent: number, eta: number | null, testId?: string): HTMLElement {
  const shown = Math.max(0, Math.min(100, percent));
  return h(
    "div",
    { class: "progress", "data-testid": testId },
    h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": shown.toFixed(0) }, h("span", { style: `width: ${shown}%` })),
    h("span", { class: "progress-text" }, `${shown.toFixed(0)}%${eta !== null ? ` · ETA ${duration(eta)}` : ""}`),
  );
}

function renderBest(el: HTMLElement, study: Study): void {
  const metric = SCORE_LABEL[study.metric];
  render(
    el,
    h("h2", null, `Best configuration per environment (highest IQM of the ${metric})`),
    study.best.length === 0
      ? h("p", { class: "muted" }, "No scores yet.")
      : h(
          "ul",
          { class: "best-list" },
          study.best.map((b) =>
            h(
              "li",
              { "data-cell": b.cell },
              h("strong", null, b.env_id),
              ": ",
              h("span", { class: "best-label" }, b.label || `cell ${b.cell}`),
              ` — IQM ${intervalText(b.iqm)}, mean ${intervalText(b.mean)}, n=${b.n}`,
            ),
          ),
        ),
    h("p", { class: "hint" }, `Intervals: 95% stratified bootstrap over the seeds. ${compact(study.progress.percent)}% of all steps done.`),
  );
}
