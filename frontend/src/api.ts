// The HTTP client: every request carries the bearer token; errors become ApiError.

import { getToken } from "./auth";
import type { EnvInfo, Group, Job, JobStatus, MetricsOut, ModelsInfo, Page, TrainSpec } from "./types";

/** Fired on window when the server answers 401, so the app can show the login page. */
export const UNAUTHORIZED_EVENT = "rlserve:unauthorized";

export interface FieldError {
  field: string | null;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fieldErrors: FieldError[] = [],
  ) {
    super(message);
  }
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** fetch() with the token; throws ApiError for any non-2xx answer. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  const response = await fetch(path, { ...init, headers });
  if (response.ok) return response;
  if (response.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
  throw await toApiError(response);
}

async function toApiError(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status text
  }
  const fieldErrors = parseValidationErrors(body);
  const message =
    messageOf(body) ??
    (fieldErrors.length ? fieldErrors.map((e) => e.message).join("; ") : null) ??
    `${response.status} ${response.statusText}`;
  return new ApiError(response.status, message, fieldErrors);
}

function messageOf(body: unknown): string | null {
  if (!body || typeof body !== "object") return null;
  const record = body as Record<string, unknown>;
  for (const key of ["message", "error", "detail"]) {
    if (typeof record[key] === "string") return record[key] as string;
  }
  return null;
}

/** FastAPI/pydantic 422 bodies: [{loc: ["body", "spec", "learning_rate"], msg: "..."}]. */
export function parseValidationErrors(body: unknown): FieldError[] {
  if (!body || typeof body !== "object") return [];
  const record = body as Record<string, unknown>;
  const list = [record.detail, record.errors].find(Array.isArray) as unknown[] | undefined;
  if (!list) return [];
  return list.flatMap((item) => {
    if (!item || typeof item !== "object") return [];
    const { loc, msg } = item as { loc?: unknown[]; msg?: unknown };
    if (typeof msg !== "string") return [];
    const names = (loc ?? []).filter((p): p is string => typeof p === "string");
    const field = names.filter((p) => p !== "body" && p !== "spec").at(-1) ?? null;
    return [{ field, message: msg.replace(/^Value error, /, "") }];
  });
}

export async function getJson<T>(path: string): Promise<T> {
  return (await apiFetch(path)).json() as Promise<T>;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await apiFetch(path, init);
  return (response.status === 204 ? null : await response.json()) as T;
}

export interface JobFilters {
  status?: JobStatus | "";
  tag?: string;
  group?: string;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const listJobs = (filters: JobFilters = {}, limit = 100) =>
  getJson<Page<Job>>(`/api/jobs${query({ ...filters, limit })}`);
export const getJob = (id: string) => getJson<Job>(`/api/jobs/${id}`);
export const cancelJob = (id: string) => sendJson<Job>("POST", `/api/jobs/${id}/cancel`);
export const retryJob = (id: string) => sendJson<Job>("POST", `/api/jobs/${id}/retry`);
export const deleteJob = (id: string) => sendJson<null>("DELETE", `/api/jobs/${id}`);
export const extendJob = (id: string, totalSteps: number) => sendJson<Job>("POST", `/api/jobs/${id}/extend`, { total_steps: totalSteps });
export const forkJob = (id: string, spec: Record<string, unknown>) => sendJson<Job>("POST", `/api/jobs/${id}/fork`, { spec });
export const listGroups = (limit = 50) => getJson<Page<Group>>(`/api/groups${query({ limit })}`);
export const getGroup = (id: string) => getJson<Group>(`/api/groups/${id}`);
export const getMe = () => getJson<{ user: string; token_name: string }>("/api/me");
export const listEnvs = () => getJson<EnvInfo[]>("/api/envs");
export const getModels = () => getJson<ModelsInfo>("/api/models");

export interface JobRequest {
  spec: Partial<TrainSpec>;
  name?: string;
  tags?: string[];
}

export const submitJob = (request: JobRequest) => sendJson<Job>("POST", "/api/jobs", request);

export interface GroupRequest extends JobRequest {
  seeds: number[];
  models: string[] | null;
}

export const submitGroup = (request: GroupRequest) => sendJson<Group>("POST", "/api/groups", request);

export const getMetrics = (id: string, keys: string[], maxPoints: number) =>
  getJson<MetricsOut>(`/api/jobs/${id}/metrics${query({ keys: keys.join(","), max_points: maxPoints })}`);

/** Download a file that needs the bearer token: fetch it, then save it from a blob URL. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const response = await apiFetch(path);
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = decodeURIComponent(name);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
