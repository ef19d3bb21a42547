// The user's studies: design, status and progress, newest first; kept current by the event
// stream of all the user's jobs (a refetch at most every REFRESH_MS while jobs change).

import { followJobs } from "../jobstream";
import { h, render } from "../dom";
import { dateTime } from "../format";
import { listStudies, type StudySummary } from "../studyapi";
import { errorBox, liveBadge, progressBar, shortId, spinner } from "../widgets";

const REFRESH_MS = 2000;

export function studiesPage(root: HTMLElement): () => void {
  const body = h("div", null, spinner());
  const { badge: live, onLive } = liveBadge();
  let timer = 0;
  let stopped = false;
  render(
    root,
    h("div", { class: "page-head" }, h("h1", null, "Studies ", live)),
    h(
      "p",
      { class: "muted" },
      "A study sweeps a spec over axes of any fields, each cell over several seeds: submit one with ",
      h("code", null, "POST /api/studies"),
      " or ",
      h("code", null, "rlserve study FILE.yaml"),
      ".",
    ),
    body,
  );

  async function refresh(): Promise<void> {
    window.clearTimeout(timer);
    timer = 0;
    try {
      const { items } = await listStudies();
      if (!stopped) render(body, items.length ? studyTable(items) : h("p", { class: "muted empty" }, "No studies yet."));
    } catch (error) {
      render(body, errorBox(`Could not load the studies: ${(error as Error).message}`));
    }
  }

  const close = followJobs(null, {
    onConnected: refresh,
    onFallback: refresh,
    onJob: (job) => {
      if (job.study_id && !timer) timer = window.setTimeout(refresh, REFRESH_MS);
    },
    onLive,
  });
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    close();
  };
}

function studyTable(items: StudySummary[]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "jobs studies" },
      h(
        "thead",
        null,
        h("tr", null, ["Study", "Axes", "Cells × seeds", "Status", "Progress", "Created"].map((t) => h("th", null, t))),
      ),
      h(
        "tbody",
        null,
        items.map((s) =>
          h(
            "tr",
            { "data-study": s.id },
            h("td", null, h("a", { href: `#/studies/${s.id}`, class: "job-link" }, s.name ?? `Study ${shortId(s.id)}`)),
            h("td", null, s.fields.join(", ") || "–", s.search === "random" ? h("span", { class: "muted" }, ` (random, ${s.samples})`) : null),
            h("td", null, `${s.cells_count} × ${s.seeds.length} = ${s.jobs_count}`),
            h("td", null, h("span", { class: `badge study-${s.status}`, "data-status": s.status }, s.status)),
            h("td", null, progressBar({ progress: s.progress.percent, eta_seconds: null, status: "running" })),
            h("td", null, dateTime(s.created_at)),
          ),
        ),
      ),
    ),
  );
}
