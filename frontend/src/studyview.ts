// What the study page shows of its cells: intervals as text, sorting by score, run states,
// and an ETA from the rate the page has seen steps advance.

import { compact } from "./format";
import type { Interval, ScoreMetric, StudyCell } from "./studyapi";

export type SortKey = "index" | "mean" | "iqm";
export interface Sort {
  key: SortKey;
  descending: boolean;
}

/** "412 [380, 440]"; "–" for none. */
export function intervalText(interval: Interval | null | undefined): string {
  if (!interval) return "–";
  return `${compact(interval.point)} [${compact(interval.low)}, ${compact(interval.high)}]`;
}

/** An axis value as given (0.00025, not 2.5e-4): it names the configuration. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Cells ordered by `sort`; by score, cells without one come last either way, ties by index. */
export function sortCells(cells: readonly StudyCell[], sort: Sort, metric: ScoreMetric): StudyCell[] {
  const score = (cell: StudyCell) => (sort.key === "index" ? cell.index : (cell.scores[metric][sort.key]?.point ?? null));
  const sign = sort.descending ? -1 : 1;
  return [...cells].sort((a, b) => {
    const [x, y] = [score(a), score(b)];
    if (x === null || y === null) return x === y ? a.index - b.index : x === null ? 1 : -1;
    return x === y ? a.index - b.index : sign * (x - y);
  });
}

/** The cell's jobs by state, in a few words: "2 done · 1 running". */
export function runsText(cell: StudyCell): string {
  const jobs = cell.progress.jobs;
  const parts: string[] = [];
  if (jobs.succeeded) parts.push(`${jobs.succeeded} done`);
  if (jobs.running) parts.push(`${jobs.running} running`);
  if (jobs.queued) parts.push(`${jobs.queued} queued`);
  if (jobs.failed) parts.push(`${jobs.failed} failed`);
  if (jobs.cancelled) parts.push(`${jobs.cancelled} cancelled`);
  return parts.join(" · ") || "no runs";
}

/**
 * Steps per second per key (a cell, the study), from the progress seen over the last
 * `windowMs`: the page's own view, so an ETA needs two looks a few seconds apart.
 */
export class StepRate {
  private readonly samples = new Map<string, { at: number; steps: number }[]>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly minSpanMs = 2_000,
  ) {}

  record(key: string, steps: number, at: number): void {
    const list = this.samples.get(key) ?? [];
    if (list.length && steps < list[list.length - 1].steps) list.length = 0; // restarted: start over
    list.push({ at, steps });
    while (list.length > 2 && at - list[1].at >= this.windowMs) list.shift();
    this.samples.set(key, list);
  }

  /** Seconds until `total` steps at the recent rate; null until the rate is known or while it is 0. */
  eta(key: string, total: number): number | null {
    const list = this.samples.get(key);
    if (!list || list.length < 2) return null;
    const first = list[0];
    const last = list[list.length - 1];
    const span = last.at - first.at;
    if (span < this.minSpanMs || last.steps <= first.steps) return null;
    const perMs = (last.steps - first.steps) / span;
    return Math.max(total - last.steps, 0) / perMs / 1000;
  }
}
