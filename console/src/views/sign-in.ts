import { Code, ConnectError } from "@connectrpc/connect";
import { usersWith } from "../api.ts";
import { busy, problemBox } from "../components.ts";
import type { Context, View } from "../context.ts";
import { focus, h } from "../dom.ts";
import { explain, type Problem } from "../problems.ts";

export function signInView(ctx: Context, notice: Problem | null): View {
  const heading = h("h1", {}, "Sign in");
  const token = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint",
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const messages = h("div", { class: "messages" }, notice ? problemBox(notice) : null);

  async function onSubmit(event: Event) {
    event.preventDefault();
    const value = token.value.trim().replace(/^bearer\s+/i, "");
    if (value === "") {
      messages.replaceChildren(
        problemBox({
          title: "No token",
          detail: "Paste a personal access token first.",
          server: "",
          signedOut: false,
        }),
      );
      focus(token);
      return;
    }
    // One cheap call tells a refused token from a good one. A good token without user.read is
    // still signed in: what it may not do is then shown where it is refused.
    try {
      await busy(submit, () => usersWith(value).listUsers({ query: { limit: 1 } }));
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code !== Code.PermissionDenied) {
        const p = explain(err, "sign in");
        messages.replaceChildren(
          problemBox(
            p.signedOut
              ? {
                  ...p,
                  title: "This token was refused (401)",
                  detail: "Check that it is complete and has not expired or been removed.",
                }
              : p,
          ),
        );
        focus(token);
        return;
      }
    }
    token.value = "";
    ctx.signedIn(value);
  }

  const element = h(
    "div",
    { class: "page narrow" },
    heading,
    messages,
    h(
      "form",
      { class: "card", method: "post", novalidate: true, onsubmit: onSubmit },
      h("label", { for: "token" }, "Personal access token"),
      token,
      h(
        "p",
        { id: "token-hint", class: "hint" },
        "The token stays in this browser tab only and is forgotten when you sign out or close the tab.",
      ),
      submit,
    ),
  );
  return { title: "Sign in", element, heading };
}
