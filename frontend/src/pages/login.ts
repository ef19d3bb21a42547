// Shown when there is no token or the server rejected it: how to get one, and a box to paste it.

import { setToken, clearToken, getToken } from "../auth";
import { h, render } from "../dom";
import type { Route } from "../router";

export function loginPage(root: HTMLElement, _route: Route, opts: { rejected: boolean; onLogin: () => void }): void {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    placeholder: "paste a token",
  });
  const form = h(
    "form",
    {
      class: "token-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        setToken(input.value);
        opts.onLogin();
      },
    },
    h("label", { for: "token" }, "Access token"),
    h("div", { class: "row" }, input, h("button", { type: "submit", class: "primary" }, "Open dashboard")),
  );
  if (opts.rejected) clearToken();
  render(
    root,
    h(
      "section",
      { class: "login card" },
      h("h1", null, opts.rejected ? "This token was not accepted" : "Sign in to rlserve"),
      opts.rejected
        ? h("p", { class: "error", role: "alert" }, "The server answered 401: the token is wrong, expired or revoked.")
        : null,
      h("p", null, "The dashboard needs an access token. Get one in either of two ways:"),
      h(
        "ol",
        null,
        h("li", null, "Open the URL that ", h("code", null, "rlserve up"), " printed; it ends in ", h("code", null, "?token=…"), "."),
        h("li", null, "Or create a token on the server: ", h("code", null, "rlserve token create NAME"), ", and paste it below."),
      ),
      form,
      getToken() ? null : h("p", { class: "muted" }, "The token is kept in this browser only (localStorage)."),
    ),
  );
  input.focus();
}
