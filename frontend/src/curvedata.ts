// Several groups of runs (a variant's seeds, a study cell's seeds) on one grid of x values,
// in the shape the band endpoint takes.

import { linspace, resample, smooth } from "./stats";

export interface CurveRun {
  /** What the run is called in the chart: "seed 2". */
  name: string;
  xs: number[];
  ys: number[];
  /**
   * Leading points that are another run's (a fork's parent's, lineage.ts branchFrom): they
   * warm up the smoothing, and only the last of them is drawn, where the branch leaves.
   */
  lead?: number;
}

/** The run's points that are drawn (`ys` its values, smoothed or not): its own, from the last of its lead on. */
export function drawnPoints(run: CurveRun, ys: readonly number[] = run.ys): { xs: number[]; ys: number[] } {
  const from = Math.max(0, (run.lead ?? 0) - 1);
  return { xs: run.xs.slice(from), ys: ys.slice(from) };
}

/** Whether the run has points of its own (a fork's lead alone is its parent's). */
export const hasOwnPoints = (run: CurveRun): boolean => run.ys.length > (run.lead ?? 0);

export interface CurveGroup {
  label: string;
  runs: CurveRun[];
}

export const GRID_POINTS = 400;
/** The most values one band request may carry (app/band_schemas.py MAX_VALUES). */
export const MAX_BAND_VALUES = 60_000;
const MIN_GRID_POINTS = 50;

/** Grid points for `runs` runs in all: GRID_POINTS, fewer when that many would not fit one band request. */
export function gridPoints(runs: number, wanted = GRID_POINTS): number {
  if (runs <= 0) return wanted;
  return Math.max(MIN_GRID_POINTS, Math.min(wanted, Math.floor(MAX_BAND_VALUES / runs)));
}

/**
 * Every group's runs smoothed and resampled onto one shared grid spanning all their drawn x
 * values, to 6 significant digits (`round6`): `runs[g][r][i]` is run r of group g at grid
 * point i, NaN where that run has no value. The band is computed from these values, so it
 * stays within them. A run with a lead is smoothed over it and drawn from its last point,
 * which is on the grid, so that a fork's curve leaves its parent's where it was forked.
 * The grid has at most `points` x values, those branch points among them.
 */
export function resampleCurves(groups: readonly CurveGroup[], smoothing: number, points: number): { grid: number[]; runs: number[][][] } {
  let lo = Infinity;
  let hi = -Infinity;
  const branches = new Set<number>();
  for (const group of groups) {
    for (const run of group.runs) {
      const { xs } = drawnPoints(run);
      for (const x of xs) {
        if (!Number.isFinite(x)) continue;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      if (run.lead && Number.isFinite(xs[0])) branches.add(xs[0]);
    }
  }
  if (lo > hi) return { grid: [], runs: groups.map((g) => g.runs.map(() => [])) };
  const even = linspace(lo, hi, Math.max(2, points - branches.size));
  const grid = [...new Set([...even, ...branches])].sort((a, b) => a - b);
  return {
    grid,
    runs: groups.map((g) =>
      round6(
        g.runs.map((run) => {
          const own = drawnPoints(run, smooth(run.ys, smoothing));
          return resample(own.xs, own.ys, grid);
        }),
      ),
    ),
  };
}

/** 6 significant digits: what a band request carries (a smaller body), and so what is drawn. */
export function round6(runs: readonly number[][]): number[][] {
  return runs.map((run) => run.map((v) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : NaN)));
}

/** One curve's runs for the request body: null for no value, 6 significant digits. */
export function toWire(runs: readonly number[][]): (number | null)[][] {
  return round6(runs).map((run) => run.map((v) => (Number.isNaN(v) ? null : v)));
}
