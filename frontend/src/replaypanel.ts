// The job page's replays: "Play an episode", "Inspect memory" (envs that hide part of
// their state), and the job's earlier replays and probes as links.

import { ApiError, listEnvs } from "./api";
import { h, render } from "./dom";
import { dateTime } from "./format";
import { navigate } from "./router";
import { createReplay, listReplays, type ReplayKind, type ReplayPolicy } from "./replay";
import type { Job } from "./types";
import { errorBox, isFinished, shortId } from "./widgets";

let memoryEnvs: Promise<Set<string>> | null = null;

/** Ids of the envs that need memory: those hide part of their state, so a probe has something to find. */
export function envsThatHide(): Promise<Set<string>> {
  memoryEnvs ??= listEnvs().then(
    (envs) => new Set(envs.filter((e) => e.needs_memory).map((e) => e.id)),
    () => ((memoryEnvs = null), new Set<string>()),
  );
  return memoryEnvs;
}

/** Which policy a replay of `job` plays now: a finished job's final one, a running job's last checkpoint. */
export function replayPolicy(job: Pick<Job, "status" | "has_policy" | "artifacts">): ReplayPolicy | null {
  if (job.has_policy) return "final";
  if (!isFinished(job.status) && job.artifacts.some((a) => a.kind === "checkpoint")) return "checkpoint";
  if (job.status === "running") return "checkpoint"; // on disk before it is listed: the API says if not
  return null;
}

export async function renderReplayPanel(el: HTMLElement, job: Job): Promise<void> {
  const policy = replayPolicy(job);
  const notice = h("div");
  const hides = (await envsThatHide()).has(job.spec.env_id);
  const start = async (kind: ReplayKind) => {
    if (!policy) return;
    render(notice);
    try {
      const replay = await createReplay(job.id, { kind, policy, seed: Math.floor(Math.random() * 10_000) });
      navigate(`/replays/${replay.id}`);
    } catch (error) {
      render(notice, errorBox(error instanceof ApiError ? error.message : (error as Error).message));
    }
  };
  const list = h("ul", { class: "replay-list", "data-testid": "replay-list" });
  render(
    el,
    h("h2", null, "Inside the agent"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", disabled: !policy, "data-action": "replay", onclick: () => start("replay") }, "Play an episode"),
      hides ? h("button", { type: "button", disabled: !policy, "data-action": "probe", onclick: () => start("probe") }, "Inspect memory") : null,
    ),
    notice,
    list,
  );
  try {
    const { items } = await listReplays(job.id);
    render(list, items.map((r) =>
      h("li", null, h("a", { href: `#/replays/${r.id}` }, `${r.kind} ${shortId(r.id)}`), ` · ${r.status} · ${r.params.policy} policy · ${dateTime(r.created_at)}`),
    ));
  } catch {
    // the list is a convenience; the buttons work without it
  }
}
