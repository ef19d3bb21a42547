// Replays and probes: their API, the step under a video time, and the canvases that show
// a replay's series (lines, heatmaps) with one cursor moving over all of them.

import { getJson, sendJson } from "./api";

export type ReplayKind = "replay" | "probe";
export type ReplayPolicy = "final" | "best" | "checkpoint";

export interface HiddenVariableTrace {
  name: string;
  kind: string;
  classes: number;
  description: string;
  values: number[];
  visible: boolean[];
  steps_since_visible: number[];
}

export interface ReplayData {
  env_id: string;
  steps: number;
  episode_return: number;
  end: string;
  fps: number;
  frame_source: string | null;
  action: { kind: string; names: string[] };
  actions: unknown[];
  action_probs: number[][] | null;
  action_mean: number[][] | null;
  values: number[];
  rewards: number[];
  hidden: { kind: string; size: number; state_shape: number[]; values: number[][] };
  hidden_variables: HiddenVariableTrace[];
}

export interface ProbeScore {
  overall: number | null;
  unseen: number | null;
  bins: { lo: number; hi: number | null; count: number; score: number | null }[];
}

export interface ProbeVariable {
  name: string;
  description: string;
  metric: string;
  binned_by: string;
  chance: number;
  state: ProbeScore;
  observation: ProbeScore | null;
}

export interface ProbeData {
  env_id: string;
  hidden_kind: string;
  hidden_size: number;
  mean_return: number;
  episodes: { train: number; test: number };
  variables: ProbeVariable[];
}

export interface Replay {
  id: string;
  job_id: string;
  kind: ReplayKind;
  status: "queued" | "running" | "ready" | "failed";
  params: Record<string, unknown>;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  has_video: boolean;
  data: (ReplayData & ProbeData) | null;
}

export const createReplay = (jobId: string, body: { kind: ReplayKind; policy: ReplayPolicy; seed?: number; deterministic?: boolean }) =>
  sendJson<Replay>("POST", `/api/jobs/${jobId}/replays`, body);
export const listReplays = (jobId: string) => getJson<{ items: Replay[] }>(`/api/jobs/${jobId}/replays`);
export const getReplay = (id: string) => getJson<Replay>(`/api/replays/${id}`);

/** The step a video shows at `time` seconds: one frame per step at `fps`. */
export function stepAt(time: number, fps: number, steps: number): number {
  if (steps <= 0) return 0;
  return Math.max(0, Math.min(steps - 1, Math.floor(time * fps + 1e-6)));
}

/** The time to seek to so the video shows `step`: the middle of its frame. */
export const timeOf = (step: number, fps: number) => (step + 0.5) / fps;

/** Diverging blue-white-red for a value in [-scale, scale] (a GRU's state lies in [-1, 1]). */
export function divergingColor(value: number, scale: number): [number, number, number] {
  const t = scale > 0 ? Math.max(-1, Math.min(1, value / scale)) : 0;
  const fade = (c: number) => Math.round(255 + (c - 255) * Math.abs(t));
  return t >= 0 ? [fade(178), fade(24), fade(43)] : [fade(33), fade(102), fade(172)];
}

/** The largest |value| of a (T, H) matrix, 1 when all are 0. */
export function maxAbs(rows: number[][]): number {
  let m = 0;
  for (const row of rows) for (const v of row) m = Math.max(m, Math.abs(v));
  return m || 1;
}

/** The hidden state as an image: a row per unit, a column per step. */
export function drawHeatmap(canvas: HTMLCanvasElement, rows: number[][]): void {
  const steps = rows.length;
  const units = rows[0]?.length ?? 0;
  canvas.width = Math.max(steps, 1);
  canvas.height = Math.max(units, 1);
  const ctx = canvas.getContext("2d");
  if (!ctx || !steps || !units) return;
  const image = ctx.createImageData(steps, units);
  const scale = maxAbs(rows);
  for (let t = 0; t < steps; t++) {
    for (let u = 0; u < units; u++) {
      const [r, g, b] = divergingColor(rows[t][u], scale);
      const i = 4 * (u * steps + t);
      image.data.set([r, g, b, 255], i);
    }
  }
  ctx.putImageData(image, 0, 0);
}

export interface Trace {
  label: string;
  color: string;
  values: (number | null)[];
}

/** Lines over the steps, each trace in its own colour, on one shared y range. */
export function drawLines(canvas: HTMLCanvasElement, traces: Trace[], height = 120): void {
  const width = canvas.clientWidth || 600;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.scale(ratio, ratio);
  const all = traces.flatMap((t) => t.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (!all.length) return;
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
  const steps = Math.max(...traces.map((t) => t.values.length));
  const x = (i: number) => ((i + 0.5) / steps) * width;
  const y = (v: number) => height - 4 - ((v - lo) / (hi - lo)) * (height - 8);
  for (const trace of traces) {
    ctx.strokeStyle = trace.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    trace.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return void (drawing = false);
      if (drawing) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
  }
}
