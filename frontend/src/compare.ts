// Turning several runs into one chart: group runs by variant, resample onto one grid, band.

import { forkLabel } from "./lineage";
import { band, linspace, resample, smooth, tCritical95, type Band, type BandKind } from "./stats";
import type { Job, Series } from "./types";

export interface Run {
  job: Job;
  xs: number[];
  ys: number[];
  /** Leading points that are a fork's parent's (lineage.ts branchFrom): smoothed, not drawn but the last. */
  lead?: number;
}

/** The points of a run that are drawn: its own, from the last of its parent's lead on. */
function drawn(run: Run, ys: number[] = run.ys): { xs: number[]; ys: number[] } {
  const from = Math.max(0, (run.lead ?? 0) - 1);
  return { xs: run.xs.slice(from), ys: ys.slice(from) };
}

export interface Variant {
  label: string;
  runs: Run[];
}

/** Spec fields that differ between runs of one variant without changing what it learns. */
const RUN_ONLY = new Set(["seed", "device", "torch_threads", "total_steps", "checkpoint_interval"]);

/**
 * Group runs whose specs are equal but for the seed; label each group by what sets it apart.
 * Forks group only with forks made at the same step, and say so (whose, and where).
 */
export function groupVariants(runs: Run[]): Variant[] {
  const keyOf = (run: Run) =>
    JSON.stringify([
      run.job.forked_at_step ?? null,
      ...Object.entries(run.job.spec)
        .filter(([k]) => !RUN_ONLY.has(k))
        .sort(([a], [b]) => a.localeCompare(b)),
    ]);
  const groups = new Map<string, Run[]>();
  for (const run of runs) groups.set(keyOf(run), [...(groups.get(keyOf(run)) ?? []), run]);
  const specs = [...groups.values()].map((g) => g[0].job.spec);
  const differing = Object.keys(specs[0] ?? {}).filter(
    (k) => !RUN_ONLY.has(k) && specs.some((s) => JSON.stringify(s[k]) !== JSON.stringify(specs[0][k])),
  );
  return [...groups.values()].map((group) => {
    const spec = group[0].job.spec;
    const parts = differing.map((k) => (k === "model" || k === "algo" || k === "env_id" ? String(spec[k]) : `${k}=${spec[k]}`));
    const fork = forkLabel(group.map((run) => run.job));
    const label = parts.join(" ") || String(spec.model);
    return { label: fork ? `${label} (${fork})` : label, runs: group };
  });
}

/** x values of a metric's points measured in wall-clock seconds, via the perf/wall_time series. */
export function toWallTime(steps: number[], wall: Series | undefined): number[] {
  if (!wall || wall.steps.length === 0) return steps.map(() => NaN);
  return resample(wall.steps, wall.values, steps);
}

export interface VariantCurve {
  variant: Variant;
  band: Band;
}

/** Mean and band per variant on one shared grid of `points` x values. */
export function curves(variants: Variant[], kind: BandKind, smoothing: number, points = 400): { grid: number[]; curves: VariantCurve[] } {
  const all = variants.flatMap((v) => v.runs.flatMap((r) => drawn(r).xs.filter(Number.isFinite)));
  if (all.length === 0) return { grid: [], curves: variants.map((variant) => ({ variant, band: { mean: [], lo: [], hi: [] } })) };
  // Where a fork leaves its parent is on the grid, so that the two curves meet there.
  const forks = variants.flatMap((v) => v.runs.filter((r) => r.lead).map((r) => drawn(r).xs[0]));
  const grid = [...new Set([...linspace(Math.min(...all), Math.max(...all), points), ...forks.filter(Number.isFinite)])].sort((a, b) => a - b);
  return {
    grid,
    curves: variants.map((variant) => {
      const runs = variant.runs.map((run) => {
        const own = drawn(run, smooth(run.ys, smoothing));
        return resample(own.xs, own.ys, grid);
      });
      return { variant, band: band(runs, kind) };
    }),
  };
}

export interface FinalScore {
  mean: number;
  halfWidth: number | null;
  n: number;
}

/** Mean over runs of each run's mean over its last 10% of points, with a 95% t-interval. */
export function finalScore(variant: Variant): FinalScore | null {
  const finals = variant.runs
    .map((r) => r.ys.slice(r.lead ?? 0)) // a fork's own points, not its parent's
    .filter((ys) => ys.length > 0)
    .map((ys) => {
      const tail = ys.slice(Math.floor(ys.length * 0.9));
      return tail.reduce((a, b) => a + b, 0) / tail.length;
    });
  const n = finals.length;
  if (n === 0) return null;
  const mean = finals.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, halfWidth: null, n };
  const sd = Math.sqrt(finals.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, halfWidth: (tCritical95(n - 1) * sd) / Math.sqrt(n), n };
}
