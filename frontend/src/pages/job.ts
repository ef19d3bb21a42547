// One job: live reward curve (with its evaluations) over SSE, panels for losses/entropy/SPS,
// spec, history, lineage (the job it was forked from), actions (extend, fork, ...).

import { ApiError, cancelJob, deleteJob, download, extendJob, forkJob, getJob, getMetrics, retryJob } from "../api";
import { LineChart, PALETTE, type LineSpec } from "../charts";
import { h, render } from "../dom";
import { compact, dateTime, duration } from "../format";
import { parseAssignments } from "../lineage";
import { href, navigate, type Route } from "../router";
import { renderReplayPanel } from "../replaypanel";
import { align, appendPoints } from "../series";
import { openStream } from "../sse";
import { METRIC, type Job, type MetricsEventData, type SeriesByKey, type StatusEventData } from "../types";
import { errorBox, isFinished, jobTitle, progressBar, shortId, spinner, statusBadge } from "../widgets";

const MAX_POINTS = 2000;

interface Panel {
  title: string;
  keys: string[];
  labels: string[];
  main?: boolean;
}

const PANELS: Panel[] = [
  // Evaluations are a few points (at their cadence and the end): drawn as marks too.
  { title: "Episode return", keys: [METRIC.return, METRIC.evalReturn], labels: ["train", "eval"], main: true },
  { title: "Losses", keys: [METRIC.policyLoss, METRIC.valueLoss], labels: ["policy", "value"] },
  { title: "Entropy", keys: [METRIC.entropy], labels: ["entropy"] },
  { title: "Approx. KL", keys: [METRIC.approxKl], labels: ["approx KL"] },
  { title: "Steps per second", keys: [METRIC.sps], labels: ["steps/s"] },
  { title: "Episode length", keys: [METRIC.length], labels: ["length"] },
];
const KEYS = PANELS.flatMap((p) => p.keys);

export function jobPage(root: HTMLElement, route: Route): () => void {
  const id = route.id!;
  const series: SeriesByKey = {};
  const charts: { panel: Panel; chart: LineChart }[] = [];
  const header = h("div", { class: "job-header" });
  const notice = h("div");
  const live = h("span", { class: "live", "data-state": "off" });
  const details = h("div", { class: "job-details" });
  const chartsEl = h("div", { class: "charts" });
  const replaysEl = h("section", { class: "panel replays", "data-testid": "replays" });
  let replayKey = "";
  let job: Job | null = null;
  let lastStep: number | null = null; // of the points held: the stream goes on after it
  let frame = 0;
  let closeStream: (() => void) | null = null;
  let stopped = false;

  render(root, spinner());

  function setLive(state: "on" | "reconnecting" | "off"): void {
    live.dataset.state = state;
    live.textContent = state === "on" ? "live" : state === "reconnecting" ? "reconnecting…" : "";
  }

  function showJob(next: Job): void {
    job = next;
    renderHeader(header, next, live, act);
    renderDetails(details, next);
    const key = [next.status, next.has_policy, next.artifacts.length].join();
    if (key !== replayKey) {
      replayKey = key;
      renderReplayPanel(replaysEl, next);
    }
  }

  async function act(action: Action): Promise<void> {
    if (!job) return;
    render(notice);
    try {
      if (action === "cancel") showJob(await cancelJob(job.id));
      else if (action === "retry") navigate(`/jobs/${(await retryJob(job.id)).id}`);
      else if (action === "extend") {
        const answer = window.prompt(`Train on to how many env steps? It has ${job.total_steps.toLocaleString()} now.`, String(job.total_steps * 2));
        if (!answer) return;
        showJob(await extendJob(job.id, Number(answer.replace(/[_,\s]/g, ""))));
        closeStream?.();
        follow(lastStep); // the same curve goes on
      } else if (action === "fork") {
        const answer = window.prompt("Spec fields to change, e.g. learning_rate=0.0003 ent_coef=0.01 total_steps=200000");
        if (answer === null) return;
        navigate(`/jobs/${(await forkJob(job.id, parseAssignments(answer))).id}`);
      }
      else if (action === "delete") {
        if (!window.confirm("Delete this job, its metrics and its policy files?")) return;
        await deleteJob(job.id);
        navigate("/");
      } else if (action === "csv") await download(`/api/jobs/${job.id}/metrics?format=csv`, `job-${shortId(job.id)}-metrics.csv`);
      else await download(`/api/jobs/${job.id}/policy?format=${action}`, `job-${shortId(job.id)}.${action}`);
    } catch (error) {
      render(notice, errorBox(error instanceof ApiError ? error.message : `Failed: ${(error as Error).message}`));
    }
  }

  function draw(): void {
    frame = 0;
    for (const { panel, chart } of charts) chart.setData(align(series, panel.keys));
  }

  function scheduleDraw(): void {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function onPoints(data: MetricsEventData): void {
    const last = data.points[data.points.length - 1];
    if (last) lastStep = Math.max(lastStep ?? last.step, last.step);
    if (!appendPoints(series, data.points, KEYS)) return;
    if (job && last && job.status === "running") {
      // Keep progress and ETA moving between status events.
      const sps = last.metrics[METRIC.sps];
      job.step = last.step;
      job.progress = (100 * last.step) / job.total_steps;
      job.eta_seconds = sps ? Math.max(job.total_steps - last.step, 0) / sps : job.eta_seconds;
      job.latest_metrics = { ...job.latest_metrics, ...last.metrics };
      job.points_written += data.points.length;
      renderHeader(header, job, live, act);
    }
    scheduleDraw();
  }

  /** Stream what comes after `lastStep`; status events come again from the first (they are snapshots). */
  function follow(lastStep: number | null): void {
    closeStream = openStream(`/api/jobs/${id}/events`, {
      lastEventId: `${lastStep ?? -1}-0`,
      onState: (connected) => setLive(connected ? "on" : "reconnecting"),
      onMessage: (message) => {
        const data = JSON.parse(message.data);
        if (message.event === "metrics") onPoints(data as MetricsEventData);
        else if (message.event === "status") showJob((data as StatusEventData).job);
        else if (message.event === "end") {
          closeStream?.();
          setLive("off");
          getJob(id).then(showJob, () => {});
        }
      },
    });
  }

  async function load(): Promise<void> {
    let first: Job;
    try {
      first = await getJob(id);
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404 ? "No such job (or it belongs to another user)." : (error as Error).message;
      render(root, h("section", { class: "card" }, h("h1", null, "Job not found"), errorBox(text), h("a", { href: "#/" }, "Back to the jobs")));
      return;
    }
    if (stopped) return;
    render(root, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / ", shortId(id)), header, notice, chartsEl, replaysEl, details);
    showJob(first);
    // Eval returns exist unless the spec turned evaluations off (every spec evaluates at its end).
    const evaluated = first.spec.eval_episodes !== 0;
    const evalLabel = first.spec.eval_deterministic === true ? "eval (greedy)" : "eval (sampled)";
    const panels = PANELS.map((p) =>
      !p.main ? p : evaluated ? { ...p, labels: [p.labels[0], evalLabel] } : { ...p, keys: p.keys.slice(0, 1), labels: p.labels.slice(0, 1) },
    );
    for (const panel of panels) {
      const el = h("div", { class: "chart" });
      chartsEl.append(h("section", { class: panel.main ? "panel main" : "panel" }, h("h2", null, panel.title), el));
      const lines: LineSpec[] = panel.labels.map((label, i) => ({
        label,
        color: PALETTE[i],
        width: panel.main ? 2 : 1.5,
        points: panel.keys[i] === METRIC.evalReturn,
      }));
      charts.push({ panel, chart: new LineChart(el, { xLabel: "env steps", lines, height: panel.main ? 300 : 180 }) });
    }
    try {
      const metrics = await getMetrics(id, KEYS, MAX_POINTS);
      Object.assign(series, metrics.series);
      lastStep = metrics.last_step;
    } catch (error) {
      render(notice, errorBox(`Could not load metrics: ${(error as Error).message}`));
    }
    if (stopped) return;
    draw();
    // The stream starts after the last step loaded above: no point is missed or drawn twice.
    if (!isFinished(first.status)) follow(lastStep);
  }

  load();
  return () => {
    stopped = true;
    closeStream?.();
    cancelAnimationFrame(frame);
    for (const { chart } of charts) chart.destroy();
  };
}

type Action = "cancel" | "retry" | "extend" | "fork" | "delete" | "onnx" | "safetensors" | "csv";

/** Title, numbers and buttons; the buttons are rebuilt only when what they depend on changes. */
function renderHeader(el: HTMLElement, job: Job, live: HTMLElement, act: (action: Action) => void): void {
  const finished = isFinished(job.status);
  if (!el.firstChild) {
    el.append(h("div", { class: "title-row" }), h("p", { class: "meta" }), h("div", { class: "stats" }), h("div", { class: "actions" }), h("div"));
  }
  const [title, meta, stats, actions, error] = [...el.children] as HTMLElement[];
  render(title, h("h1", null, jobTitle(job)), statusBadge(job.status), live);
  render(
    meta,
    [job.spec.algo, job.spec.model, job.spec.env_id, `seed ${job.spec.seed}`].join(" · "),
    job.group_id ? [" · ", h("a", { href: `#/compare?group=${job.group_id}` }, "compare its group")] : null,
    lineage(job),
  );
  // A finished job has its mean over the last 100 episodes (what "best" is judged on too);
  // a running one shows its latest point.
  const ret = job.mean_return ?? job.latest_metrics?.[METRIC.return];
  render(
    stats,
    h("div", { class: "stat wide-stat" }, h("span", { class: "label" }, "Progress"), progressBar(job)),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Env steps"), `${compact(job.step)} / ${compact(job.total_steps)}`),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Mean return"), h("span", { "data-testid": "latest-return" }, compact(ret))),
    h("div", { class: "stat" }, h("span", { class: "label" }, "Best return"), compact(job.best_return)),
  );
  const checkpointed = job.artifacts.some((a) => a.kind === "checkpoint");
  const key = [job.status, job.cancel_requested, job.has_policy, job.points_written > 0, checkpointed].join();
  if (actions.dataset.key !== key) {
    actions.dataset.key = key;
    const button = (action: Action, label: string, enabled: boolean, extra = "") =>
      h("button", { type: "button", class: extra, disabled: !enabled, "data-action": action, onclick: () => act(action) }, label);
    render(
      actions,
      button("cancel", job.cancel_requested && !finished ? "Cancelling…" : "Cancel", !finished && !job.cancel_requested, "danger"),
      button("retry", "Retry", finished),
      button("extend", "Extend…", finished && checkpointed),
      // A running job's checkpoint is on disk before it is listed: the API says if there is none.
      button("fork", "Fork…", job.status === "running" || checkpointed),
      button("onnx", "Download ONNX", job.has_policy),
      button("safetensors", "Download safetensors", job.has_policy),
      button("csv", "Metrics CSV", job.points_written > 0),
      button("delete", "Delete", finished, "danger subtle"),
    );
  }
  render(error, job.error ? h("div", { class: "error-box", role: "alert" }, h("strong", null, "Error"), h("pre", null, job.error)) : null);
}

/** " · forked from 1a2b3c4d at step 50k · compare with it", for a fork. */
function lineage(job: Job): (string | HTMLElement)[] | null {
  if (job.forked_at_step === null) return null;
  const at = `at step ${compact(job.forked_at_step)}`;
  if (!job.parent_id) return [` · forked ${at} from a job since deleted`];
  return [
    " · forked from ",
    h("a", { href: `#/jobs/${job.parent_id}`, "data-testid": "parent-link" }, shortId(job.parent_id)),
    ` ${at} · `,
    h("a", { href: href("/compare", { jobs: `${job.parent_id},${job.id}` }) }, "compare with it"),
  ];
}

function renderDetails(el: HTMLElement, job: Job): void {
  const spec = Object.entries(job.spec).sort(([a], [b]) => a.localeCompare(b));
  const info: [string, string][] = [
    ["id", job.id],
    ["queue", job.queue],
    ["device", job.device ?? "–"],
    ["worker", job.worker_host ?? "–"],
    ["attempts", String(job.attempts)],
    ["created", dateTime(job.created_at)],
    ["started", dateTime(job.started_at)],
    ["finished", dateTime(job.finished_at)],
    ["ETA", job.status === "running" ? duration(job.eta_seconds) : "–"],
    ["resumed from step", job.resumed_from_step === null ? "–" : compact(job.resumed_from_step)],
    ["forked from", job.forked_at_step === null ? "–" : `${job.parent_id ?? "(deleted)"} at step ${compact(job.forked_at_step)}`],
    ["tags", job.tags.join(", ") || "–"],
  ];
  const table = (rows: [string, unknown][]) =>
    h("table", { class: "kv" }, h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v === null ? "–" : String(v))))));
  render(
    el,
    h("section", { class: "panel" }, h("h2", null, "Status history"), h(
      "ol",
      { class: "history" },
      job.history.map((event) =>
        h("li", null, statusBadge(event.status), " ", h("time", { datetime: event.at }, dateTime(event.at)), event.message ? ` — ${event.message}` : ""),
      ),
    ), h("h2", null, "Run"), table(info)),
    h("section", { class: "panel" }, h("h2", null, "Spec"), table(spec)),
  );
}
