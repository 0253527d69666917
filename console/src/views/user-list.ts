import type { MessageInitShape } from "@bufbuild/protobuf";
import { TextQueryMethod } from "@zitadel/proto/zitadel/object/v2/object_pb.js";
import { type SearchQuerySchema, UserFieldName } from "@zitadel/proto/zitadel/user/v2/query_pb.js";
import type { User } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import { users } from "../api.ts";
import { badge, busy, problemBox } from "../components.ts";
import type { Context, View } from "../context.ts";
import { focus, h } from "../dom.ts";
import { USER_STATE_ACTIVE, userStateNames } from "../format.ts";
import { explain } from "../problems.ts";

type SearchQuery = MessageInitShape<typeof SearchQuerySchema>;

const pageSize = 20;

// A phone number as people type it ("079 123 45 67", "+41 79 ...", "0041 79 ...") reduced to
// what the stored E.164 form contains: digits, without the national or international prefix.
function phoneDigits(term: string): string | null {
  if (!/^[+\d\s()./-]+$/.test(term)) return null;
  const digits = term.replace(/\D/g, "").replace(/^00/, "").replace(/^0/, "");
  return digits.length >= 3 ? digits : null;
}

// One box searches usernames, names, email addresses and phone numbers at once.
export function searchQueries(term: string, orgId: string): SearchQuery[] {
  const queries: SearchQuery[] = [];
  if (term !== "") {
    const method = TextQueryMethod.CONTAINS_IGNORE_CASE;
    const any: SearchQuery[] = [
      { query: { case: "userNameQuery", value: { userName: term, method } } },
      { query: { case: "displayNameQuery", value: { displayName: term, method } } },
      { query: { case: "emailQuery", value: { emailAddress: term, method } } },
    ];
    const digits = phoneDigits(term);
    if (digits)
      any.push({
        query: { case: "phoneQuery", value: { number: digits, method: TextQueryMethod.CONTAINS } },
      });
    queries.push({ query: { case: "orQuery", value: { queries: any } } });
  }
  if (orgId !== "")
    queries.push({ query: { case: "organizationIdQuery", value: { organizationId: orgId } } });
  return queries;
}

function listHash(term: string, orgId: string, page: number): string {
  const p = new URLSearchParams();
  if (term) p.set("q", term);
  if (orgId) p.set("org", orgId);
  if (page > 1) p.set("page", String(page));
  const query = p.toString();
  return `#/users${query ? `?${query}` : ""}`;
}

function userItem(u: User): HTMLElement {
  const human = u.type.case === "human" ? u.type.value : null;
  const machine = u.type.case === "machine" ? u.type.value : null;
  const name = human?.profile?.displayName || machine?.name || u.username;
  return h(
    "li",
    {},
    h(
      "a",
      { href: `#/users/${encodeURIComponent(u.userId)}`, class: "user-link" },
      h("span", { class: "user-name" }, name),
      h("span", { class: "user-login" }, u.username),
      u.state === USER_STATE_ACTIVE ? null : badge(false, "", userStateNames[u.state] ?? `state ${u.state}`),
    ),
    h(
      "p",
      { class: "user-facts" },
      human
        ? [
            h("span", {}, human.email?.email || "no email"),
            h(
              "span",
              {},
              human.phone?.phone
                ? [human.phone.phone, " ", badge(human.phone.isVerified, "verified", "not verified")]
                : "no phone",
            ),
          ]
        : h("span", {}, "Machine user"),
    ),
  );
}

export function userListView(params: URLSearchParams, ctx: Context): View {
  let term = params.get("q") ?? "";
  let orgId = params.get("org") ?? "";
  let page = Math.max(1, Math.floor(Number(params.get("page"))) || 1);
  let searches = 0;

  const heading = h("h1", {}, "Users");
  const termInput = h("input", {
    id: "search-term",
    name: "q",
    type: "search",
    autocomplete: "off",
    value: term,
    "aria-describedby": "search-hint",
  });
  const orgInput = h("input", { id: "search-org", name: "org", autocomplete: "off", value: orgId });
  const searchButton = h("button", { type: "submit" }, "Search");
  const summary = h("p", { class: "summary", tabindex: "-1" });
  const results = h("div", { class: "results" });
  const pager = h("nav", { class: "pager", "aria-label": "Result pages" });

  async function load(moveFocus: boolean) {
    const mine = ++searches;
    summary.textContent = "Searching…";
    results.replaceChildren();
    pager.replaceChildren();
    ctx.setListHash(listHash(term, orgId, page));
    try {
      const res = await busy(searchButton, () =>
        users.listUsers({
          query: { offset: BigInt((page - 1) * pageSize), limit: pageSize, asc: true },
          sortingColumn: UserFieldName.USER_NAME,
          queries: searchQueries(term, orgId),
        }),
      );
      if (!ctx.isCurrent() || mine !== searches) return;
      const total = Number(res.details?.totalResult ?? 0n);
      const first = (page - 1) * pageSize + 1;
      summary.textContent =
        total === 0
          ? "No users found."
          : res.result.length === 0
            ? `No users on page ${page}; there are ${total} in all.`
            : `Users ${first}–${first + res.result.length - 1} of ${total}`;
      if (res.result.length > 0)
        results.replaceChildren(
          h("ul", { class: "user-list", "aria-label": "Users found" }, res.result.map(userItem)),
        );
      const pages = Math.max(1, Math.ceil(total / pageSize));
      if (pages > 1) {
        const go = (to: number) => () => {
          page = to;
          history.replaceState(null, "", listHash(term, orgId, page));
          void load(true);
        };
        pager.replaceChildren(
          h("button", { type: "button", disabled: page <= 1, onclick: go(page - 1) }, "Previous page"),
          h("span", {}, `Page ${page} of ${pages}`),
          h("button", { type: "button", disabled: page >= pages, onclick: go(page + 1) }, "Next page"),
        );
      }
    } catch (err) {
      if (!ctx.isCurrent() || mine !== searches) return;
      const p = explain(err, "list users");
      if (p.signedOut) return ctx.signedOut(p);
      summary.textContent = "";
      results.replaceChildren(problemBox(p));
    }
    if (moveFocus) focus(summary);
  }

  const form = h(
    "form",
    {
      role: "search",
      class: "card search",
      onsubmit: (event: Event) => {
        event.preventDefault();
        term = termInput.value.trim();
        orgId = orgInput.value.trim();
        page = 1;
        history.replaceState(null, "", listHash(term, orgId, page));
        void load(true);
      },
    },
    h("label", { for: "search-term" }, "Search users"),
    h("div", { class: "inline" }, termInput, searchButton),
    h("p", { id: "search-hint", class: "hint" }, "Part of a username, name, email address or phone number."),
    h(
      "details",
      { open: orgId !== "" },
      h("summary", {}, "Filter by organization"),
      h("label", { for: "search-org" }, "Organization ID"),
      orgInput,
    ),
  );

  const element = h(
    "div",
    { class: "page" },
    heading,
    form,
    h("div", { role: "status" }, summary),
    results,
    pager,
  );
  void load(false);
  return { title: "Users", element, heading };
}
