import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { User } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import { type UserEvent, userEvents, users } from "../api.ts";
import { badge, busy, doneBox, problemBox, timeOf } from "../components.ts";
import type { Context, View } from "../context.ts";
import { type Child, focus, h, uniqueId } from "../dom.ts";
import {
  authMethodNames,
  authorName,
  eventName,
  OTP_SMS,
  USER_STATE_ACTIVE,
  userStateNames,
} from "../format.ts";
import { explain } from "../problems.ts";

interface Loaded {
  readonly user: User;
  readonly methods: number[] | Error;
  readonly events: UserEvent[] | Error;
}

const fact = (term: string, ...value: Child[]) => [h("dt", {}, term), h("dd", {}, ...value)];

function section(title: string, ...content: (Child | readonly Child[])[]): HTMLElement {
  const id = uniqueId("section");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

// Asks before removing a factor, naming whose and which number, so that the help desk does not
// remove the wrong person's. Cancel is the default: Enter or Escape change nothing.
function confirmRemoval(name: string, username: string, phone: string): Promise<boolean> {
  const titleId = uniqueId("confirm-title");
  const textId = uniqueId("confirm-text");
  const cancel = h("button", { type: "button", class: "secondary", autofocus: true }, "Cancel");
  const confirm = h("button", { type: "button", class: "danger solid" }, "Remove OTP SMS");
  const dialog = h(
    "dialog",
    { class: "confirm", "aria-labelledby": titleId, "aria-describedby": textId },
    h("h2", { id: titleId }, `Remove OTP SMS from ${name}?`),
    h(
      "p",
      { id: textId },
      `${name} (${username}) will no longer receive one-time passwords by SMS at ${phone || "their phone"}. `,
      "They can only use OTP SMS again after it is added back.",
    ),
    h("div", { class: "actions" }, cancel, confirm),
  );
  return new Promise((resolve) => {
    cancel.addEventListener("click", () => dialog.close("cancel"));
    confirm.addEventListener("click", () => dialog.close("confirm"));
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "confirm");
        dialog.remove();
      },
      { once: true },
    );
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function userPageView(userId: string, ctx: Context): View {
  const heading = h("h1", {}, "User");
  const feedback = h("div", { class: "feedback", tabindex: "-1" });
  const body = h("div", { class: "user-body" }, h("p", {}, "Loading…"));
  let loaded: Loaded | null = null;

  async function fetchAll(): Promise<Loaded | Error> {
    const [user, methods, events] = await Promise.allSettled([
      users.getUserByID({ userId }),
      users.listAuthenticationMethodTypes({ userId }),
      userEvents(userId),
    ]);
    if (user.status === "rejected") return user.reason as Error;
    if (!user.value.user) return new Error("the server answered without a user");
    return {
      user: user.value.user,
      methods: methods.status === "fulfilled" ? methods.value.authMethodTypes : (methods.reason as Error),
      events: events.status === "fulfilled" ? events.value : (events.reason as Error),
    };
  }

  // Runs one change; on success shows its sequence and time, on refusal what it means; then
  // reloads the page's data and takes focus there, so that a screen reader hears the outcome.
  async function act(button: HTMLButtonElement, action: string, done: string, call: () => Promise<unknown>) {
    feedback.replaceChildren();
    try {
      const res = (await busy(button, call)) as {
        details?: { sequence: bigint; changeDate?: Timestamp };
      };
      await reload();
      feedback.replaceChildren(doneBox(done, res.details));
    } catch (err) {
      const p = explain(err, action);
      if (p.signedOut) return ctx.signedOut(p);
      feedback.replaceChildren(problemBox(p));
    }
    if (ctx.isCurrent()) focus(feedback);
  }

  function phoneSection(u: User): HTMLElement | null {
    if (u.type.case !== "human") return null;
    const phone = u.type.value.phone;
    const number = phone?.phone ?? "";
    const newNumber = h("input", {
      id: uniqueId("new-phone"),
      name: "phone",
      type: "tel",
      autocomplete: "off",
      required: true,
    });
    const setButton = h("button", { type: "submit" }, "Set phone number");
    const radio = (value: string, label: string, checked: boolean) =>
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name: "verification", value, checked }),
        label,
      );
    const setForm = h(
      "form",
      {
        class: "stack",
        onsubmit: (event: Event) => {
          event.preventDefault();
          const form = event.currentTarget as HTMLFormElement;
          const verified = new FormData(form).get("verification") === "verified";
          const value = newNumber.value.trim();
          void act(
            setButton,
            "set the phone number",
            verified
              ? "Phone number set and marked verified."
              : "Phone number set; a verification code was sent by SMS.",
            () =>
              users.setPhone({
                userId,
                phone: value,
                verification: verified
                  ? { case: "isVerified", value: true }
                  : { case: "sendCode", value: {} },
              }),
          );
        },
      },
      h("label", { for: newNumber.id }, "New phone number"),
      newNumber,
      h(
        "fieldset",
        {},
        h("legend", {}, "How is it verified?"),
        radio("send", "Send a verification code by SMS", true),
        radio("verified", "Mark it verified (you have confirmed the number yourself)", false),
      ),
      setButton,
    );

    // With a number in place, changing it is the rarer task: it stays folded until asked for.
    const setPart = h(
      "details",
      { class: "change", open: number === "" },
      h("summary", {}, number ? "Change the phone number" : "Add a phone number"),
      setForm,
    );

    let verifyForm: HTMLElement | null = null;
    if (number && !phone?.isVerified) {
      const code = h("input", {
        id: uniqueId("phone-code"),
        name: "code",
        autocomplete: "one-time-code",
        required: true,
        spellcheck: "false",
      });
      const verifyButton = h("button", { type: "submit" }, "Verify phone number");
      verifyForm = h(
        "form",
        {
          class: "stack",
          onsubmit: (event: Event) => {
            event.preventDefault();
            const value = code.value.trim();
            void act(verifyButton, "verify the phone number", "Phone number verified.", () =>
              users.verifyPhone({ userId, verificationCode: value }),
            );
          },
        },
        h("h3", {}, "Verify the phone number"),
        h("label", { for: code.id }, "Code from the SMS"),
        code,
        verifyButton,
      );
    }

    return section(
      "Phone",
      number
        ? h(
            "p",
            { class: "phone" },
            h("span", { class: "number" }, number),
            " ",
            badge(!!phone?.isVerified, "Verified", "Not verified"),
          )
        : h("p", {}, "No phone number."),
      verifyForm,
      setPart,
    );
  }

  function methodsSection(u: User, methods: number[] | Error): HTMLElement {
    if (methods instanceof Error)
      return section(
        "Authentication methods",
        problemBox(explain(methods, "read the authentication methods")),
      );
    const human = u.type.case === "human" ? u.type.value : null;
    const name = human?.profile?.displayName || u.username;
    const phone = human?.phone;
    const hasOtpSms = methods.includes(OTP_SMS);
    const items = methods.map((m) => {
      const label = authMethodNames[m] ?? `Method ${m}`;
      if (m !== OTP_SMS) return h("li", {}, h("span", {}, label));
      const remove = h("button", { type: "button", class: "danger" }, "Remove OTP SMS…");
      remove.addEventListener("click", async () => {
        if (!(await confirmRemoval(name, u.username, phone?.phone ?? ""))) return;
        await act(remove, "remove OTP SMS", `OTP SMS removed from ${name}.`, () =>
          users.removeOTPSMS({ userId }),
        );
      });
      return h(
        "li",
        {},
        h("span", {}, label, phone?.phone ? h("span", { class: "meta" }, ` to ${phone.phone}`) : null),
        remove,
      );
    });
    let add: HTMLElement | null = null;
    if (human && !hasOtpSms) {
      const ready = !!phone?.phone && phone.isVerified;
      const hintId = uniqueId("otp-hint");
      const button = h(
        "button",
        { type: "button", disabled: !ready, "aria-describedby": ready ? null : hintId },
        "Add OTP SMS",
      );
      button.addEventListener("click", () =>
        act(button, "add OTP SMS", `OTP SMS added for ${name}.`, () => users.addOTPSMS({ userId })),
      );
      add = h(
        "div",
        { class: "stack" },
        button,
        ready ? null : h("p", { id: hintId, class: "hint" }, "OTP SMS needs a verified phone number first."),
      );
    }
    return section(
      "Authentication methods",
      items.length > 0
        ? h("ul", { class: "methods" }, items)
        : h("p", {}, "No authentication methods are set up."),
      add,
    );
  }

  function eventsSection(events: UserEvent[] | Error): HTMLElement {
    if (events instanceof Error)
      return section("Recent events", problemBox(explain(events, "read the user's events")));
    if (events.length === 0) return section("Recent events", h("p", {}, "No events."));
    return section(
      "Recent events",
      h(
        "table",
        { class: "events" },
        h("caption", { class: "visually-hidden" }, "Newest first"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Event"),
            h("th", { scope: "col" }, "Time"),
            h("th", { scope: "col" }, "By"),
          ),
        ),
        h(
          "tbody",
          {},
          events.map((e) =>
            h(
              "tr",
              {},
              h(
                "td",
                { "data-label": "Event" },
                h("span", {}, eventName(e.type)),
                " ",
                h("code", { class: "type" }, e.type),
              ),
              h("td", { "data-label": "Time" }, timeOf(e.creationDate)),
              h("td", { "data-label": "By" }, authorName(e.creator)),
            ),
          ),
        ),
      ),
    );
  }

  function render(l: Loaded) {
    const u = l.user;
    const human = u.type.case === "human" ? u.type.value : null;
    const machine = u.type.case === "machine" ? u.type.value : null;
    const name = human?.profile?.displayName || machine?.name || u.username;
    heading.textContent = name;
    const d = u.details;
    const profile = section(
      "Profile",
      h(
        "dl",
        { class: "facts" },
        fact("Username", u.username),
        fact(
          "State",
          badge(u.state === USER_STATE_ACTIVE, "Active", userStateNames[u.state] ?? `State ${u.state}`),
        ),
        human ? fact("Given name", human.profile?.givenName ?? "") : [],
        human ? fact("Family name", human.profile?.familyName ?? "") : [],
        human
          ? fact(
              "Email",
              human.email?.email || "none",
              " ",
              human.email?.email ? badge(human.email.isVerified, "Verified", "Not verified") : null,
            )
          : [],
        machine ? fact("Kind", "Machine user") : [],
        machine?.description ? fact("Description", machine.description) : [],
        fact("User ID", h("code", {}, u.userId)),
        fact("Organization ID", h("code", {}, d?.resourceOwner ?? "")),
        d?.creationDate ? fact("Created", timeOf(timestampDate(d.creationDate))) : [],
        d?.changeDate
          ? fact(
              "Last changed",
              timeOf(timestampDate(d.changeDate)),
              h("span", { class: "meta" }, ` (sequence ${d.sequence})`),
            )
          : [],
      ),
    );
    body.replaceChildren(
      profile,
      phoneSection(u) ?? "",
      methodsSection(u, l.methods),
      eventsSection(l.events),
    );
  }

  async function reload(): Promise<void> {
    const result = await fetchAll();
    if (!ctx.isCurrent()) return;
    if (result instanceof Error) {
      const p = explain(result, "show this user");
      if (p.signedOut) return ctx.signedOut(p);
      loaded = null;
      body.replaceChildren(problemBox(p));
      return;
    }
    loaded = result;
    render(loaded);
  }

  const element = h(
    "div",
    { class: "page" },
    h(
      "p",
      { class: "back" },
      h("a", { href: ctx.listHash() }, h("span", { "aria-hidden": "true" }, "← "), "All users"),
    ),
    heading,
    feedback,
    body,
  );
  void reload();
  return { title: "User", element, heading };
}
