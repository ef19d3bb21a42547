// The studies API (`/api/studies`, app/study_schemas.py): shapes and calls.

import { getJson, sendJson } from "./api";
import type { JobStatus } from "./types";

export type ScoreMetric = "final" | "mmer" | "eval";
export const SCORE_METRICS: ScoreMetric[] = ["final", "mmer", "eval"];
export const SCORE_LABEL: Record<ScoreMetric, string> = { final: "final score", mmer: "MMER", eval: "eval score" };

export interface Interval {
  point: number;
  low: number;
  high: number;
}

export interface Aggregate {
  n: number;
  mean: Interval | null;
  iqm: Interval | null;
}

export interface StudyProgress {
  steps: number;
  total_steps: number;
  /** 0 to 100. */
  percent: number;
  jobs: Record<JobStatus, number>;
}

export interface StudyRun {
  job_id: string;
  seed: number;
  status: JobStatus;
  step: number;
  total_steps: number;
  final_score: number | null;
  mmer: number | null;
  eval_score: number | null;
  partial: boolean;
}

export interface StudyCell {
  index: number;
  values: Record<string, unknown>;
  label: string;
  env_id: string;
  runs: StudyRun[];
  progress: StudyProgress;
  partial: boolean;
  scores: Record<ScoreMetric, Aggregate>;
  is_best: boolean;
  /** P(a run of the env's best cell beats a run of this one), for the other cells. */
  best_improvement: Interval | null;
}

export interface BestCell {
  env_id: string;
  cell: number;
  values: Record<string, unknown>;
  label: string;
  n: number;
  iqm: Interval;
  mean: Interval;
}

export interface StudySummary {
  id: string;
  name: string | null;
  created_at: string;
  search: "grid" | "random";
  samples: number | null;
  study_seed: number | null;
  seeds: number[];
  /** The axes' fields: the cells' columns. */
  fields: string[];
  cells_count: number;
  jobs_count: number;
  status: "queued" | "running" | "finished";
  progress: StudyProgress;
}

export interface Study extends StudySummary {
  spec: Record<string, unknown>;
  axes: { field: string; values: unknown[] | null; range: unknown }[];
  metric: ScoreMetric;
  confidence: number;
  cells: StudyCell[];
  best: BestCell[];
}

export interface ProfileCurve {
  cells: number[];
  values: Record<string, unknown>;
  label: string;
  envs: string[];
  runs: number;
  partial: boolean;
  fractions: number[];
  lower: number[];
  upper: number[];
}

export interface Profiles {
  study_id: string;
  metric: ScoreMetric;
  normalisation: string;
  taus: number[];
  profiles: ProfileCurve[];
}

export const listStudies = (limit = 50) => getJson<{ items: StudySummary[]; total: number }>(`/api/studies?limit=${limit}`);
export const getStudy = (id: string, metric: ScoreMetric) => getJson<Study>(`/api/studies/${id}?metric=${metric}`);
export const cancelStudy = (id: string) => sendJson<Study>("POST", `/api/studies/${id}/cancel`);
export const deleteStudy = (id: string) => sendJson<null>("DELETE", `/api/studies/${id}`);

/** Performance profiles of `cells` (all when null). */
export function getProfiles(id: string, metric: ScoreMetric, cells: number[] | null): Promise<Profiles> {
  const query = new URLSearchParams({ metric, points: "51" });
  if (cells) query.set("cells", cells.join(","));
  return getJson<Profiles>(`/api/studies/${id}/profile?${query}`);
}
