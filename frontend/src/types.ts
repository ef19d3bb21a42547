// Shapes of the rlserve HTTP API, as the dashboard uses them.

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const JOB_STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "cancelled"];
export const FINISHED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

/** A training spec (rlcore.spec.TrainSpec). Only the fields the dashboard reads are typed. */
export interface TrainSpec {
  algo: string;
  model: string;
  env_id: string;
  seed: number;
  total_steps: number;
  [field: string]: unknown;
}

export interface StatusChange {
  status: JobStatus;
  at: string;
  message?: string | null;
}

export interface Artifact {
  kind: "policy" | "best_policy" | "checkpoint";
  step: number;
  size_bytes: number;
  created_at: string;
}

/** app.schemas.Job */
export interface Job {
  id: string;
  name: string | null;
  tags: string[];
  priority: number;
  group_id: string | null;
  study_id: string | null;
  status: JobStatus;
  /** The full TrainSpec with every default filled in. */
  spec: TrainSpec;
  queue: string;
  device: string | null;
  worker_host: string | null;
  attempts: number;
  cancel_requested: boolean;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  history: StatusChange[];
  step: number;
  total_steps: number;
  /** 0 to 100. */
  progress: number;
  eta_seconds: number | null;
  resumed_from_step: number | null;
  /** The job this one was forked from (null once that job is deleted). */
  parent_id: string | null;
  /** The step of the parent's checkpoint a fork started from. */
  forked_at_step: number | null;
  latest_metrics: Record<string, number> | null;
  points_written: number;
  mean_return: number | null;
  best_return: number | null;
  has_policy: boolean;
  artifacts: Artifact[];
}

export interface Group {
  id: string;
  name: string | null;
  spec: TrainSpec;
  seeds: number[];
  models: string[];
  created_at: string;
  jobs: Job[];
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface EnvInfo {
  id: string;
  description: string;
  solved_return: number | null;
  needs_memory: boolean;
  family: string;
  /** Observations are uint8 frames: the encoder is the CNN. */
  pixels: boolean;
  action_names: string[];
  /** The env options (frame_stack, flicker, ...) a spec may set for this env. */
  options: string[];
  /** Per algorithm, the spec defaults this env sets over the algorithm's own. */
  defaults: Record<string, Record<string, unknown>>;
}

/** A JSON-schema property of TrainSpec, as far as the form reads it. */
export interface FieldSchema {
  type?: string;
  anyOf?: FieldSchema[];
  enum?: string[];
  $ref?: string;
  default?: unknown;
  description?: string;
  title?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** app.schemas.ModelsOut */
export interface ModelsInfo {
  algorithms: string[];
  models: string[];
  devices: string[];
  /** The spec fields each algorithm uses; the API refuses a spec that sets another. */
  algorithm_fields: Record<string, string[]>;
  algorithm_defaults: Record<string, Record<string, unknown>>;
  /** Defaults that do not depend on the algorithm. */
  spec_defaults: Record<string, unknown>;
  spec_schema: { properties: Record<string, FieldSchema> };
}

/** One metric as columns: steps[i] goes with values[i]. */
export interface Series {
  steps: number[];
  values: number[];
}

export type SeriesByKey = Record<string, Series>;

/** app.schemas.MetricsOut */
export interface MetricsOut {
  job_id: string;
  keys: string[];
  total_points: number;
  downsampled: boolean;
  last_step: number | null;
  series: SeriesByKey;
}

/** A metric point; the event stream pushes them in `metrics` events. */
export interface MetricPoint {
  step: number;
  metrics: Record<string, number>;
}

export const METRIC = {
  return: "charts/episodic_return",
  length: "charts/episodic_length",
  evalReturn: "eval/episodic_return",
  policyLoss: "losses/policy_loss",
  valueLoss: "losses/value_loss",
  entropy: "losses/entropy",
  approxKl: "losses/approx_kl",
  sps: "perf/sps",
  wallTime: "perf/wall_time",
} as const;

/** Event-stream payloads (`GET /api/jobs/{id}/events`). */
export interface StatusEventData {
  job_id: string;
  status: JobStatus;
  at: string;
  message: string | null;
  job: Job;
}

export interface MetricsEventData {
  job_id: string;
  points: MetricPoint[];
}

/** `event: points` of GET /api/events: a running job has points stored up to `last_step`. */
export interface PointsEventData {
  job_id: string;
  last_step: number;
}
