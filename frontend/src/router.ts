// Hash routes (#/jobs/12, #/compare?group=g), so a plain static mount serves every page.

/** Mounts a page into `root`; returns a function that stops its timers and streams. */
export type Page = (root: HTMLElement, route: Route) => (() => void) | void;

export interface Route {
  path: string;
  params: URLSearchParams;
  /** The :id of /jobs/:id, /studies/:id or /replays/:id, when the path has one. */
  id: string | null;
}

export function currentRoute(): Route {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?", 2);
  const match = /^\/(jobs|studies|replays)\/([\w-]+)$/.exec(path);
  return { path: match ? `/${match[1]}/:id` : path, params: new URLSearchParams(search), id: match ? match[2] : null };
}

export function href(path: string, params: Record<string, string | number | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function navigate(path: string, params: Record<string, string | number | undefined> = {}): void {
  window.location.hash = href(path, params);
}

/** Change the query of the current page without adding a history entry or remounting. */
export function replaceParams(params: Record<string, string | number | undefined>): void {
  const path = window.location.hash.replace(/^#/, "").split("?")[0] || "/";
  window.history.replaceState(null, "", href(path, params));
}
