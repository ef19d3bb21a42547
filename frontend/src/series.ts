// Metric series kept in the browser: appending live points and aligning keys for a chart.

import type uPlot from "uplot";
import type { MetricPoint, SeriesByKey } from "./types";

/** Append points (in step order) to the series of the keys they carry; skips steps already held. */
export function appendPoints(series: SeriesByKey, points: MetricPoint[], keys: readonly string[]): boolean {
  let changed = false;
  for (const point of points) {
    for (const key of keys) {
      const value = point.metrics[key];
      if (value === undefined || value === null) continue;
      const s = (series[key] ??= { steps: [], values: [] });
      if (s.steps.length && point.step <= s.steps[s.steps.length - 1]) continue;
      s.steps.push(point.step);
      s.values.push(value);
      changed = true;
    }
  }
  return changed;
}

/**
 * uPlot's column data for several keys: one x column (the union of their steps) and one
 * column per key, null where the key has no point at that step. Steps repeat where the
 * server kept a bucket's min and max at the same step; those stay as separate rows.
 */
export function align(series: SeriesByKey, keys: readonly string[]): uPlot.AlignedData {
  const present = keys.map((key) => series[key] ?? { steps: [], values: [] });
  if (present.length === 1) return [present[0].steps, present[0].values];
  const index = present.map(() => 0);
  const xs: number[] = [];
  const columns: (number | null)[][] = present.map(() => []);
  for (;;) {
    let next = Infinity;
    present.forEach((s, k) => {
      if (index[k] < s.steps.length) next = Math.min(next, s.steps[index[k]]);
    });
    if (next === Infinity) break;
    xs.push(next);
    present.forEach((s, k) => {
      if (index[k] < s.steps.length && s.steps[index[k]] === next) {
        columns[k].push(s.values[index[k]]);
        index[k] += 1;
      } else {
        columns[k].push(null);
      }
    });
  }
  return [xs, ...columns];
}
