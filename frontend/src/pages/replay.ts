// One replay (an episode: video, scrub slider and the series under it, in sync) or one
// probe (what the memory holds about each hidden variable), polled until it is ready.

import { ApiError, apiFetch } from "../api";
import { PALETTE } from "../charts";
import { h, render } from "../dom";
import { compact } from "../format";
import { drawHeatmap, drawLines, getReplay, stepAt, timeOf, type ProbeData, type Replay, type ReplayData, type Trace } from "../replay";
import type { Route } from "../router";
import { errorBox, shortId, spinner } from "../widgets";

const POLL_MS = 1000;

export function replayPage(root: HTMLElement, route: Route): () => void {
  const id = route.id!;
  let stopped = false;
  let timer = 0;
  let cleanup: (() => void) | null = null;
  render(root, spinner());

  async function poll(): Promise<void> {
    let replay: Replay;
    try {
      replay = await getReplay(id);
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404 ? "No such replay (or it belongs to another user)." : (error as Error).message;
      render(root, h("section", { class: "card" }, h("h1", null, "Replay not found"), errorBox(text)));
      return;
    }
    if (stopped) return;
    const crumbs = h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Jobs"), " / ", h("a", { href: `#/jobs/${replay.job_id}` }, shortId(replay.job_id)), " / ", replay.kind, " ", shortId(id));
    const title = replay.kind === "probe" ? "Memory probe" : "Episode replay";
    const params = Object.entries(replay.params).map(([k, v]) => `${k} ${v}`).join(" · ");
    const head = [crumbs, h("h1", null, title), h("p", { class: "meta" }, params)];
    if (replay.status === "failed") {
      render(root, ...head, h("div", { class: "error-box", role: "alert", "data-testid": "replay-error" }, h("strong", null, "Failed"), h("pre", null, replay.error ?? "")));
      return;
    }
    if (replay.status !== "ready" || !replay.data) {
      render(root, ...head, spinner(`${replay.status === "queued" ? "Queued" : "Running"} on the worker…`));
      timer = window.setTimeout(poll, POLL_MS);
      return;
    }
    const body = h("div");
    render(root, ...head, body);
    if (replay.kind === "probe") renderProbe(body, replay.data);
    else cleanup = renderReplay(body, replay);
  }

  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    cleanup?.();
  };
}

interface Track {
  el: HTMLElement;
  cursor: HTMLElement;
  draw: () => void;
}

function track(title: string, canvas: HTMLCanvasElement, draw: () => void, legend: Trace[] = [], testid?: string): Track {
  const cursor = h("div", { class: "replay-cursor", "data-testid": testid ? `${testid}-cursor` : undefined });
  const keys = legend.map((t) => h("span", { class: "replay-key" }, h("i", { style: `background: ${t.color}` }), t.label));
  const el = h("section", { class: "replay-track", "data-testid": testid }, h("h2", null, title, " ", keys), h("div", { class: "replay-plot" }, canvas, cursor));
  return { el, cursor, draw };
}

function lineTrack(title: string, traces: Trace[], testid?: string): Track {
  const canvas = h("canvas", { class: "replay-lines" });
  return track(title, canvas, () => drawLines(canvas, traces), traces, testid);
}

function renderReplay(el: HTMLElement, replay: Replay): () => void {
  const data = replay.data as ReplayData;
  const steps = data.steps;
  const fps = data.fps || 30;
  const video = h("video", { class: "replay-video", muted: true, playsInline: true, preload: "auto", "data-testid": "replay-video" });
  const slider = h("input", { type: "range", min: "0", max: String(steps - 1), value: "0", step: "1", "data-testid": "replay-slider", "aria-label": "Step" });
  const index = h("span", { "data-testid": "frame-index" }, `step 1 / ${steps}`);
  const play = h("button", { type: "button", "data-testid": "replay-play" }, "Play");
  const now = h("div", { class: "replay-now", "data-testid": "replay-now" });
  const note = h("div");
  const names = data.action.names.length ? data.action.names : [];

  const tracks: Track[] = [
    lineTrack("Reward and value", [
      { label: "reward", color: PALETTE[1], values: data.rewards },
      { label: "value", color: PALETTE[0], values: data.values },
    ], "track-value"),
  ];
  if (data.action_probs) {
    const width = data.action_probs[0]?.length ?? 0;
    const traces = Array.from({ length: width }, (_, a) => ({
      label: names[a] ?? `action ${a}`,
      color: PALETTE[a % PALETTE.length],
      values: data.action_probs!.map((row) => row[a]),
    }));
    tracks.push(lineTrack("Action probabilities", traces, "track-probs"));
  } else if (data.action_mean) {
    const width = data.action_mean[0]?.length ?? 0;
    const traces = Array.from({ length: width }, (_, a) => ({ label: `mean ${a}`, color: PALETTE[a % PALETTE.length], values: data.action_mean!.map((row) => row[a]) }));
    tracks.push(lineTrack("Action mean", traces, "track-probs"));
  }
  const heat = h("canvas", { class: "replay-heatmap", "data-testid": "heatmap", "data-units": String(data.hidden.size), "data-steps": String(steps) });
  const memory = data.hidden.kind === "state" ? "Hidden state" : "Features (no recurrent state)";
  tracks.push(track(`${memory}: ${data.hidden.size} units × ${steps} steps`, heat, () => drawHeatmap(heat, data.hidden.values), [], "track-hidden"));
  if (data.hidden_variables.length) {
    const traces = data.hidden_variables.map((v, i) => ({ label: `${v.name} (true)`, color: PALETTE[(i + 2) % PALETTE.length], values: v.values }));
    tracks.push(lineTrack("What the agent could not see", traces, "track-hidden-variables"));
  }

  let step = 0;
  let raf = 0;
  function show(next: number, seek: boolean): void {
    step = Math.max(0, Math.min(steps - 1, next));
    el.dataset.step = String(step);
    slider.value = String(step);
    index.textContent = `step ${step + 1} / ${steps}`;
    const left = `${((step + 0.5) / steps) * 100}%`;
    for (const t of tracks) t.cursor.style.left = left;
    renderNow(now, data, step);
    if (seek && Math.abs(video.currentTime - timeOf(step, fps)) > 0.5 / fps) video.currentTime = timeOf(step, fps);
  }
  function follow(): void {
    show(stepAt(video.currentTime, fps, steps), false);
    if (!video.paused) raf = requestAnimationFrame(follow);
  }
  slider.addEventListener("input", () => {
    video.pause();
    show(Number(slider.value), true);
  });
  play.addEventListener("click", () => {
    if (video.paused) {
      if (video.ended || step >= steps - 1) video.currentTime = 0;
      video.play().catch(() => render(note, errorBox("This browser cannot play the video; the slider still scrubs the episode.")));
    } else video.pause();
  });
  video.addEventListener("play", () => ((play.textContent = "Pause"), (raf = requestAnimationFrame(follow))));
  video.addEventListener("pause", () => ((play.textContent = "Play"), cancelAnimationFrame(raf), follow()));
  video.addEventListener("seeked", () => video.paused && show(stepAt(video.currentTime, fps, steps), false));

  const summary = `${data.env_id} · ${steps} steps · return ${compact(data.episode_return)} · ended: ${data.end}`;
  render(
    el,
    h("p", { class: "meta", "data-testid": "replay-summary" }, summary),
    note,
    h("div", { class: "replay-top" }, h("div", { class: "replay-screen" }, video, h("div", { class: "replay-controls" }, play, slider, index)), now),
    tracks.map((t) => t.el),
  );
  for (const t of tracks) t.draw();
  show(0, false);

  let url = "";
  apiFetch(`/api/replays/${replay.id}/video`)
    .then((response) => response.blob())
    .then((blob) => {
      url = URL.createObjectURL(blob);
      video.src = url;
    })
    .catch((error) => render(note, errorBox(`Could not load the video: ${(error as Error).message}`)));
  const redraw = () => tracks.forEach((t) => t.draw());
  window.addEventListener("resize", redraw);
  return () => {
    cancelAnimationFrame(raf);
    video.pause();
    window.removeEventListener("resize", redraw);
    if (url) URL.revokeObjectURL(url);
  };
}

/** At the cursor: what the agent saw (its observation, its action) beside what it could not. */
function renderNow(el: HTMLElement, data: ReplayData, step: number): void {
  const obs = (data as unknown as { observations: number[] | null }).observations;
  const seen = Array.isArray(obs) ? (obs[step] as unknown as number[]) : null;
  const fmt = (v: unknown) => (typeof v === "number" ? v.toFixed(3) : JSON.stringify(v));
  const rows: HTMLElement[] = [
    h("tr", null, h("th", null, "action"), h("td", null, fmt(data.actions[step]))),
    h("tr", null, h("th", null, "reward"), h("td", null, fmt(data.rewards[step]))),
    h("tr", null, h("th", null, "value"), h("td", null, fmt(data.values[step]))),
  ];
  render(
    el,
    h("h2", null, "What it saw"),
    seen ? h("p", { class: "mono", "data-testid": "observation" }, seen.map(fmt).join("  ")) : h("p", { class: "muted" }, "pixels: see the video"),
    h("table", { class: "kv" }, h("tbody", null, rows)),
    data.hidden_variables.length
      ? [
          h("h2", null, "What it could not see"),
          h("table", { class: "kv", "data-testid": "hidden-now" }, h("tbody", null, data.hidden_variables.map((v) =>
            h("tr", null, h("th", { title: v.description }, v.name), h("td", null, fmt(v.values[step]), v.visible[step] ? " (shown)" : ` (hidden ${v.steps_since_visible[step]} steps)`)),
          ))),
        ]
      : null,
  );
}

function scoreText(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

function bar(value: number | null | undefined, cls: string): HTMLElement {
  const width = Math.max(0, Math.min(1, value ?? 0)) * 100;
  return h("span", { class: `probe-bar ${cls}`, style: `width: ${width}%`, title: scoreText(value) });
}

function renderProbe(el: HTMLElement, data: ProbeData): void {
  const overall = h(
    "table",
    { class: "probe-table", "data-testid": "probe-table" },
    h("thead", null, h("tr", null, h("th", null, "hidden variable"), h("th", null, "metric"), h("th", null, "from the memory"), h("th", null, "from the observation"), h("th", null, "chance"))),
    h("tbody", null, data.variables.map((v) =>
      h("tr", { "data-variable": v.name },
        h("th", { title: v.description }, v.name),
        h("td", null, v.metric === "r2" ? "R²" : "accuracy"),
        h("td", null, bar(v.state.overall, "state"), " ", scoreText(v.state.overall)),
        h("td", null, bar(v.observation?.overall, "observation"), " ", scoreText(v.observation?.overall)),
        h("td", null, scoreText(v.chance)),
      ),
    )),
  );
  const binned = data.variables.map((v) =>
    h("section", { class: "panel" },
      h("h2", null, `${v.name}: by ${v.binned_by.replace(/_/g, " ")}`),
      h("table", { class: "probe-table" },
        h("thead", null, h("tr", null, h("th", null, "steps"), h("th", null, "n"), h("th", null, "memory"), h("th", null, "observation"))),
        h("tbody", null, v.state.bins.map((b, i) =>
          h("tr", null,
            h("td", null, b.hi === null ? `${b.lo}+` : b.hi - 1 > b.lo ? `${b.lo}–${b.hi - 1}` : String(b.lo)),
            h("td", null, String(b.count)),
            h("td", null, bar(b.score, "state"), " ", scoreText(b.score)),
            h("td", null, bar(v.observation?.bins[i]?.score, "observation"), " ", scoreText(v.observation?.bins[i]?.score)),
          ),
        )),
      ),
    ),
  );
  render(
    el,
    h("p", { class: "meta" }, `${data.env_id} · ${data.hidden_kind === "state" ? "recurrent state" : "features"} of ${data.hidden_size} units · ${data.episodes.train} episodes to fit, ${data.episodes.test} held out · mean return ${compact(data.mean_return)}`),
    h("p", { class: "muted" }, "A linear probe from the policy's memory (and, as the baseline, from the observation alone) to each variable the env hides, scored on the held-out episodes."),
    h("section", { class: "panel" }, overall),
    binned,
  );
}
