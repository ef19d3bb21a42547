// Small pieces shared by the pages: status badge, progress bar, messages.

import { h } from "./dom";
import { duration } from "./format";
import { FINISHED, type Job, type JobStatus } from "./types";

export function statusBadge(status: JobStatus): HTMLElement {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}

export function progressBar(job: Pick<Job, "progress" | "eta_seconds" | "status">): HTMLElement {
  const percent = Math.max(0, Math.min(100, job.progress ?? 0));
  const eta = job.status === "running" && job.eta_seconds !== null ? ` · ETA ${duration(job.eta_seconds)}` : "";
  return h(
    "div",
    { class: "progress" },
    h(
      "div",
      { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": percent.toFixed(0) },
      h("span", { style: `width: ${percent}%` }),
    ),
    h("span", { class: "progress-text" }, `${percent.toFixed(0)}%${eta}`),
  );
}

/** The first 8 hex digits of a job or group id: enough to tell them apart on screen. */
export const shortId = (id: string) => id.slice(0, 8);

export function jobTitle(job: Pick<Job, "id" | "name" | "spec">): string {
  return job.name || `${job.spec.model} seed ${job.spec.seed} · ${shortId(job.id)}`;
}

export const isFinished = (status: JobStatus) => FINISHED.has(status);

export function errorBox(message: string): HTMLElement {
  return h("p", { class: "error", role: "alert" }, message);
}

export function spinner(text = "Loading…"): HTMLElement {
  return h("p", { class: "muted loading" }, text);
}

/** The "live" badge of a page that follows an event stream, and the callback that updates it. */
export function liveBadge(): { badge: HTMLElement; onLive: (on: boolean) => void } {
  const badge = h("span", { class: "live", "data-state": "off" });
  return {
    badge,
    onLive: (on) => {
      badge.dataset.state = on ? "on" : "reconnecting";
      badge.textContent = on ? "live" : "reconnecting…";
    },
  };
}
