import { h, render } from "../dom";
import type { Route } from "../router";

export function notFoundPage(root: HTMLElement, route: Route): void {
  render(
    root,
    h("section", { class: "card" }, h("h1", null, "Page not found"), h("p", null, `Nothing at #${route.path}. `, h("a", { href: "#/" }, "Back to the jobs"), ".")),
  );
}
