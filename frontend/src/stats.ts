// Numbers for the charts: smoothing, resampling onto a common grid, the seeds' min-max band.

/** Exponential moving average with TensorBoard's debiasing; weight 0 returns a copy. */
export function smooth(values: readonly number[], weight: number): number[] {
  if (weight <= 0) return values.slice();
  const out: number[] = [];
  let last = 0;
  let n = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      out.push(v);
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n += 1;
    out.push(last / (1 - weight ** n));
  }
  return out;
}

/** `n` evenly spaced points from `lo` to `hi`. */
export function linspace(lo: number, hi: number, n: number): number[] {
  if (n <= 1 || hi <= lo) return [lo];
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/**
 * Linear interpolation of (xs, ys) at each grid point; NaN outside [xs[0], xs[last]],
 * so a seed that has not reached a step yet does not count there. xs must be sorted.
 */
export function resample(xs: readonly number[], ys: readonly number[], grid: readonly number[]): number[] {
  const out: number[] = new Array(grid.length).fill(NaN);
  if (xs.length === 0) return out;
  let j = 0;
  for (let i = 0; i < grid.length; i++) {
    const x = grid[i];
    if (x < xs[0] || x > xs[xs.length - 1]) continue;
    while (j < xs.length - 2 && xs[j + 1] < x) j++;
    const x0 = xs[j];
    const x1 = xs[Math.min(j + 1, xs.length - 1)];
    const y0 = ys[j];
    const y1 = ys[Math.min(j + 1, ys.length - 1)];
    out[i] = x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return out;
}

/** Per grid point: a statistic of the runs there, its band, and how many runs have a value. */
export interface Band {
  center: (number | null)[];
  lower: (number | null)[];
  upper: (number | null)[];
  n: number[];
}

/**
 * Mean and the runs' min and max at each grid point. `runs[r][i]` is run r at point i (NaN
 * where run r has no value); null where no run has one. Confidence bands come from the API
 * (`POST /api/stats/bands`, see bands.ts): one implementation, in rlcore.stats.
 */
export function minMaxBand(runs: readonly number[][]): Band {
  const length = runs[0]?.length ?? 0;
  const result: Band = { center: [], lower: [], upper: [], n: [] };
  for (let i = 0; i < length; i++) {
    const values = runs.map((run) => run[i]).filter(Number.isFinite);
    const n = values.length;
    result.n.push(n);
    if (n === 0) {
      result.center.push(null);
      result.lower.push(null);
      result.upper.push(null);
      continue;
    }
    result.center.push(values.reduce((a, b) => a + b, 0) / n);
    result.lower.push(Math.min(...values));
    result.upper.push(Math.max(...values));
  }
  return result;
}
