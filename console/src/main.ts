import type { Context, View } from "./context.ts";
import { focus, h } from "./dom.ts";
import type { Problem } from "./problems.ts";
import { currentToken, forget, remember } from "./session.ts";
import { signInView } from "./views/sign-in.ts";
import { userListView } from "./views/user-list.ts";
import { userPageView } from "./views/user-page.ts";

// The console: one page, routed by the address's fragment (#/users, #/users/<id>), which never
// reaches the server and never holds the token.

const root = document.getElementById("app");
if (!root) throw new Error("the page has no #app element");

const main = h("main", { id: "main", tabindex: "-1" });
const signOut = h("button", { type: "button", class: "quiet" }, "Sign out");
const nav = h("nav", { "aria-label": "Console" }, h("a", { href: "#/users" }, "Users"), signOut);
const skip = h("a", { class: "skip", href: "#main" }, "Skip to content");
skip.addEventListener("click", (event) => {
  event.preventDefault();
  focus(main);
});
root.replaceChildren(
  skip,
  h("header", { class: "bar" }, h("a", { class: "brand", href: "#/users" }, "Latchkey console"), nav),
  main,
);

let generation = 0;
let lastList = "#/users";
let notice: Problem | null = null;
// Where a person was headed (or was) when asked to sign in: sign-in takes them back there.
let afterSignIn: string | null = null;

function show(view: View, moveFocus: boolean): void {
  main.replaceChildren(view.element);
  document.title = `${view.title} – Latchkey console`;
  if (moveFocus) focus(view.heading);
}

function route(moveFocus = true): void {
  const mine = ++generation;
  const raw = window.location.hash.replace(/^#/, "");
  const [path = "/", query = ""] = (raw.startsWith("/") ? raw : "/").split("?", 2);
  const signedIn = currentToken() !== null;
  nav.hidden = !signedIn;
  const ctx: Context = {
    isCurrent: () => mine === generation,
    signedOut(problem) {
      forget();
      notice = problem;
      afterSignIn = window.location.hash;
      navigate("#/sign-in");
    },
    signedIn(token) {
      remember(token);
      notice = null;
      const next = afterSignIn ?? lastList;
      afterSignIn = null;
      navigate(next);
    },
    listHash: () => lastList,
    setListHash(hash) {
      lastList = hash;
    },
  };
  const user = /^\/users\/([^/]+)$/.exec(path);
  if (!signedIn && path !== "/sign-in") afterSignIn = `#${raw}`;
  if (!signedIn) show(signInView(ctx, notice), moveFocus);
  else if (user?.[1]) show(userPageView(decodeURIComponent(user[1]), ctx), moveFocus);
  else {
    if (path !== "/users") history.replaceState(null, "", "#/users");
    show(userListView(new URLSearchParams(query), ctx), moveFocus);
  }
}

function navigate(hash: string): void {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

signOut.addEventListener("click", () => {
  forget();
  notice = null;
  lastList = "#/users";
  afterSignIn = null;
  navigate("#/sign-in");
});
window.addEventListener("hashchange", () => route());
route(false);
