import "./style.css";
import { UNAUTHORIZED_EVENT } from "./api";
import { captureTokenFromUrl, getToken } from "./auth";
import { comparePage } from "./pages/compare";
import { jobPage } from "./pages/job";
import { jobsPage } from "./pages/jobs";
import { loginPage } from "./pages/login";
import { notFoundPage } from "./pages/notfound";
import { replayPage } from "./pages/replay";
import { studiesPage } from "./pages/studies";
import { studyPage } from "./pages/study";
import { submitPage } from "./pages/submit";
import { currentRoute, type Page } from "./router";

const PAGES: Record<string, { page: Page; nav: string }> = {
  "/": { page: jobsPage, nav: "jobs" },
  "/submit": { page: submitPage, nav: "submit" },
  "/jobs/:id": { page: jobPage, nav: "jobs" },
  "/compare": { page: comparePage, nav: "compare" },
  "/studies": { page: studiesPage, nav: "studies" },
  "/studies/:id": { page: studyPage, nav: "studies" },
  "/replays/:id": { page: replayPage, nav: "jobs" },
};

const root = document.getElementById("app") as HTMLElement;
let cleanup: (() => void) | void;
let rejected = false;

function show(): void {
  cleanup?.();
  cleanup = undefined;
  root.replaceChildren();
  const route = currentRoute();
  if (!getToken() || rejected) {
    setNav(null);
    cleanup = loginPage(root, route, { rejected, onLogin: () => ((rejected = false), show()) });
    return;
  }
  const entry = PAGES[route.path];
  setNav(entry?.nav ?? null);
  cleanup = (entry?.page ?? notFoundPage)(root, route);
}

function setNav(active: string | null): void {
  for (const link of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === active);
  }
}

captureTokenFromUrl();
window.addEventListener("hashchange", show);
window.addEventListener(UNAUTHORIZED_EVENT, () => {
  if (rejected) return;
  rejected = true;
  show();
});
show();
