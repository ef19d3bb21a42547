// Numbers for the charts: smoothing, resampling onto a common grid, seed bands.

/** Two-sided 95% critical values of Student's t for df = 1..30. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function tCritical95(df: number): number {
  if (df < 1) return NaN;
  if (df <= 30) return T95[Math.floor(df) - 1];
  const z = 1.959964; // beyond the table: first Cornish-Fisher correction, within 0.002
  return z + (z ** 3 + z) / (4 * df);
}

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

export type BandKind = "t95" | "minmax";

export interface Band {
  mean: (number | null)[];
  lo: (number | null)[];
  hi: (number | null)[];
}

/**
 * Mean and band across runs at each grid point. `runs[r][i]` is run r at point i (NaN
 * where run r has no value). The band needs two runs; with one, lo = hi = mean.
 */
export function band(runs: readonly number[][], kind: BandKind): Band {
  const length = runs[0]?.length ?? 0;
  const result: Band = { mean: [], lo: [], hi: [] };
  for (let i = 0; i < length; i++) {
    const values = runs.map((run) => run[i]).filter(Number.isFinite);
    const n = values.length;
    if (n === 0) {
      result.mean.push(null);
      result.lo.push(null);
      result.hi.push(null);
      continue;
    }
    const mean = values.reduce((a, b) => a + b, 0) / n;
    let lo = mean;
    let hi = mean;
    if (kind === "minmax") {
      lo = Math.min(...values);
      hi = Math.max(...values);
    } else if (n >= 2) {
      const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
      const half = tCritical95(n - 1) * Math.sqrt(variance / n);
      lo = mean - half;
      hi = mean + half;
    }
    result.mean.push(mean);
    result.lo.push(lo);
    result.hi.push(hi);
  }
  return result;
}
