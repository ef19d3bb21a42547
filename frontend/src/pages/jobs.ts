// The jobs table: live status, progress, latest return; filters kept in the URL.
// Changes are pushed over GET /api/events; the list is fetched when the stream (re)connects,
// when a job the table does not show yet appears, and slowly while the stream is down.

import { listJobs, type JobFilters } from "../api";
import { h, render } from "../dom";
import { followJobs } from "../jobstream";
import { compact, dateTime, duration, secondsBetween } from "../format";
import { href, navigate, replaceParams, type Route } from "../router";
import { JOB_STATUSES, METRIC, type Job, type JobStatus } from "../types";
import { errorBox, jobTitle, liveBadge, progressBar, shortId, statusBadge } from "../widgets";

/** A burst of new jobs (a group) costs one list request, not one each. */
const NEW_JOB_REFRESH_MS = 300;

export function jobsPage(root: HTMLElement, route: Route): () => void {
  const filters: JobFilters = {
    status: (route.params.get("status") ?? "") as JobStatus | "",
    tag: route.params.get("tag") ?? "",
    group: route.params.get("group") ?? "",
  };
  const selected = new Set<string>();
  const tbody = h("tbody");
  const message = h("div");
  const compareButton = h("button", { type: "button", disabled: true, onclick: () => compareSelected() }, "Compare selected");
  let timer = 0;
  let stopped = false;
  let jobs: Job[] = [];
  let loading: Promise<void> | null = null;
  let again = false;

  function compareSelected(): void {
    navigate("/compare", { jobs: [...selected].join(",") });
  }

  function onSelect(id: string, checked: boolean): void {
    if (checked) selected.add(id);
    else selected.delete(id);
    compareButton.disabled = selected.size < 1;
    compareButton.textContent = selected.size ? `Compare selected (${selected.size})` : "Compare selected";
  }

  function filterChanged(): void {
    replaceParams({ status: filters.status, tag: filters.tag, group: filters.group });
    refresh();
  }

  const statusSelect = h(
    "select",
    {
      id: "filter-status",
      onchange: () => ((filters.status = statusSelect.value as JobStatus | ""), filterChanged()),
    },
    h("option", { value: "" }, "any"),
    JOB_STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
  );
  const textFilter = (key: "tag" | "group") => {
    const input = h("input", { id: `filter-${key}`, type: "search", value: filters[key], placeholder: key });
    input.addEventListener("change", () => ((filters[key] = input.value.trim()), filterChanged()));
    return input;
  };

  render(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Jobs"),
      h("div", { class: "actions" }, compareButton, h("a", { class: "button primary", href: "#/submit" }, "New job")),
    ),
    h(
      "form",
      { class: "filters", onsubmit: (e: Event) => e.preventDefault() },
      h("label", null, "Status ", statusSelect),
      h("label", null, "Tag ", textFilter("tag")),
      h("label", null, "Group ", textFilter("group")),
    ),
    message,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "jobs job-list" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { class: "select" }, h("span", { class: "visually-hidden" }, "Select")),
            h("th", null, "Job"),
            h("th", null, "Env"),
            h("th", null, "Model"),
            h("th", { class: "wide" }, "Algo"),
            h("th", null, "Status"),
            h("th", null, "Progress"),
            h("th", { class: "num" }, "Return"),
            h("th", { class: "wide" }, "Created"),
            h("th", { class: "wide num" }, "Duration"),
          ),
        ),
        tbody,
      ),
    ),
  );

  // New jobs a list request is already scheduled or running for: their next events
  // (running, progress) must not ask for the list again before it arrives.
  const requested = new Set<string>();

  /** Fetch the list; one request at a time, and one more if asked meanwhile. */
  function refresh(): Promise<void> {
    window.clearTimeout(timer);
    if (loading) {
      again = true;
      return loading;
    }
    const asked = [...requested];
    loading = (async () => {
      try {
        jobs = (await listJobs(filters)).items;
        for (const id of asked) requested.delete(id);
        if (stopped) return;
        render(message);
        renderRows(tbody, jobs, selected, onSelect);
      } catch (error) {
        render(message, errorBox(`Could not load jobs: ${(error as Error).message}`));
      }
    })().finally(() => {
      loading = null;
      if (again && !stopped) {
        again = false;
        refresh();
      }
    });
    return loading;
  }

  function onJob(job: Job): void {
    const index = jobs.findIndex((j) => j.id === job.id);
    const wanted = matches(job, filters);
    if (index >= 0 && wanted) {
      jobs[index] = job;
      renderRows(tbody, jobs, selected, onSelect);
    } else if (index >= 0 || wanted) {
      // A new job, or one that no longer matches the filters: the server decides the page.
      if (index < 0 && requested.has(job.id)) return;
      if (index < 0) requested.add(job.id);
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, NEW_JOB_REFRESH_MS);
    }
  }

  const { badge: live, onLive } = liveBadge();
  root.querySelector(".page-head h1")?.append(" ", live);
  const close = followJobs(null, {
    onConnected: refresh,
    onFallback: refresh,
    onJob,
    onLive,
  });
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    close();
  };
}

function matches(job: Job, filters: JobFilters): boolean {
  return (
    (!filters.status || job.status === filters.status) &&
    (!filters.tag || job.tags.includes(filters.tag)) &&
    (!filters.group || job.group_id === filters.group)
  );
}

/** Update the table in place, one row per job, so focus and selection survive a refresh. */
function renderRows(tbody: HTMLElement, jobs: Job[], selected: Set<string>, onSelect: (id: string, on: boolean) => void): void {
  if (jobs.length === 0) {
    render(tbody, h("tr", null, h("td", { colspan: 10, class: "empty" }, "No jobs yet. ", h("a", { href: "#/submit" }, "Submit one"), ".")));
    return;
  }
  const existing = new Map<string, HTMLTableRowElement>();
  for (const row of tbody.querySelectorAll<HTMLTableRowElement>("tr[data-job]")) existing.set(row.dataset.job!, row);
  const rows = jobs.map((job) => {
    const row = existing.get(job.id) ?? newRow(job, selected, onSelect);
    fillRow(row, job);
    return row;
  });
  const current = [...tbody.children];
  if (rows.length !== current.length || rows.some((row, i) => row !== current[i])) tbody.replaceChildren(...rows);
}

function newRow(job: Job, selected: Set<string>, onSelect: (id: string, on: boolean) => void): HTMLTableRowElement {
  const box = h("input", {
    type: "checkbox",
    checked: selected.has(job.id),
    "aria-label": `Select job ${shortId(job.id)}`,
    onchange: () => onSelect(job.id, box.checked),
  });
  const row = h("tr", { "data-job": job.id }, h("td", { class: "select" }, box));
  for (let i = 0; i < 9; i++) row.append(h("td"));
  return row;
}

function fillRow(row: HTMLTableRowElement, job: Job): void {
  const cells = [...row.cells].slice(1);
  const group = job.group_id
    ? h("a", { class: "group-link", href: href("/compare", { group: job.group_id }) }, `group ${shortId(job.group_id)}`)
    : job.study_id
      ? h("a", { class: "group-link", href: `#/studies/${job.study_id}` }, `study ${shortId(job.study_id)}`)
      : null;
  const ret = job.latest_metrics?.[METRIC.return] ?? job.mean_return;
  const contents: (Node | string)[][] = [
    [h("a", { href: `#/jobs/${job.id}`, class: "job-link" }, jobTitle(job)), ...(group ? [h("br"), group] : [])],
    [job.spec.env_id],
    [job.spec.model],
    [job.spec.algo],
    [statusBadge(job.status)],
    [progressBar(job)],
    [compact(ret)],
    [dateTime(job.created_at)],
    [duration(secondsBetween(job.started_at, job.finished_at))],
  ];
  const columns = ["job", "env", "model", "algo wide", "status", "progress", "return num", "created wide", "duration wide num"];
  contents.forEach((content, i) => {
    const cell = cells[i];
    cell.className = `c-${columns[i]}`;
    const key = content.map((c) => (typeof c === "string" ? c : (c as Element).outerHTML ?? "")).join("|");
    if (cell.dataset.key === key) return; // unchanged: leave the DOM (and any hover) alone
    cell.dataset.key = key;
    cell.replaceChildren(...content);
  });
}
