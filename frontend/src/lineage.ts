// Forks and extensions in the dashboard: reading "key=value" spec changes, and drawing a
// fork's curve as a branch that leaves its parent's curve at the step it was forked at.

import { compact } from "./format";
import type { Job, Series } from "./types";
import { shortId } from "./widgets";

/**
 * Spec changes typed as `learning_rate=3e-4 ent_coef=0.01, anneal_lr=false`: numbers and
 * booleans become JSON numbers and booleans, anything else stays a string. Throws on a
 * piece without `=`.
 */
export function parseAssignments(text: string): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  for (const piece of text.split(/[\s,]+/).filter(Boolean)) {
    const at = piece.indexOf("=");
    if (at <= 0) throw new Error(`"${piece}" is not key=value`);
    const raw = piece.slice(at + 1);
    const number = Number(raw);
    changes[piece.slice(0, at)] =
      raw === "true" ? true : raw === "false" ? false : raw === "null" ? null : raw !== "" && Number.isFinite(number) ? number : raw;
  }
  return changes;
}

export interface Branch {
  series: Series;
  /** How many leading points are the parent's: they warm up the smoothing; only the last is drawn. */
  lead: number;
}

/**
 * A fork's series behind its parent's points up to `at` (the step it was forked at), so
 * that smoothed alike, the fork's curve leaves the parent's curve at that step. Unchanged
 * (lead 0) without a parent series that has points up to `at`.
 */
export function branchFrom(child: Series, parent: Series | undefined, at: number | null | undefined): Branch {
  const alone = { series: child, lead: 0 };
  if (!parent || typeof at !== "number" || (child.steps.length && child.steps[0] <= at)) return alone;
  const lead = parent.steps.findIndex((step) => step > at);
  const n = lead === -1 ? parent.steps.length : lead;
  if (n === 0) return alone;
  return {
    series: { steps: [...parent.steps.slice(0, n), ...child.steps], values: [...parent.values.slice(0, n), ...child.values] },
    lead: n,
  };
}

/** What a variant of forks says about them: "fork of 1a2b3c4d at 50k", or "3 forks at 50k". */
export function forkLabel(jobs: Pick<Job, "parent_id" | "forked_at_step">[]): string | null {
  const forks = jobs.filter((job) => typeof job.forked_at_step === "number");
  if (forks.length === 0) return null;
  const steps = [...new Set(forks.map((job) => job.forked_at_step as number))];
  const where = steps.length === 1 ? `at ${compact(steps[0])}` : "at several steps";
  const parents = [...new Set(forks.map((job) => job.parent_id))];
  if (parents.length === 1) return parents[0] ? `fork of ${shortId(parents[0])} ${where}` : `fork (parent deleted) ${where}`;
  return `${forks.length} forks ${where}`;
}
