// Several runs of a comparison: grouped by variant, x in steps or seconds, final scores.

import { forkLabel } from "./lineage";
import { resample } from "./stats";
import type { Job, Series } from "./types";

export interface Run {
  job: Job;
  xs: number[];
  ys: number[];
  /** Leading points that are a fork's parent's (lineage.ts branchFrom): smoothed, not drawn but the last. */
  lead?: number;
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

/** Each run's mean over its last 10% of its own points (a fork's, not its parent's); runs without any left out. */
export function finalValues(variant: Variant): number[] {
  return variant.runs
    .map((r) => r.ys.slice(r.lead ?? 0))
    .filter((ys) => ys.length > 0)
    .map((ys) => {
      const tail = ys.slice(Math.floor(ys.length * 0.9));
      return tail.reduce((a, b) => a + b, 0) / tail.length;
    });
}
