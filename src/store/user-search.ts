import type { TextMethod, UserFilter, UserSearch, UserSortField, UserTextField } from "../app/ports.ts";
import { type UserSearchFields, userSearchFields } from "../app/projection.ts";
import type { UserState } from "../domain/user/state.ts";
import { sqliteLower } from "./sqlite/functions.ts";

// The users read model's search columns and the SQL that searches them, for both adapters: the
// two dialects differ only where noted, so that one contract suite holds both to the same answers.

export type Dialect = "sqlite" | "postgres";

// What user.put writes besides the state itself, in the order of searchColumnNames.
export function searchColumns(u: UserState): string[] {
  const f = userSearchFields(u);
  return [
    f.kind,
    f.state,
    f.email,
    f.phone,
    f.givenName,
    f.familyName,
    f.nickName,
    f.displayName,
    f.createdAt,
  ];
}

// The columns as a snapshot reads them back, for verify to hold against the state.
export interface SearchColumnRow {
  kind: string;
  user_state: string;
  email: string;
  phone: string;
  given_name: string;
  family_name: string;
  nick_name: string;
  display_name: string;
  created_at: string;
}

export const searchFieldsOfRow = (r: SearchColumnRow): UserSearchFields => ({
  kind: r.kind,
  state: r.user_state,
  email: r.email,
  phone: r.phone,
  givenName: r.given_name,
  familyName: r.family_name,
  nickName: r.nick_name,
  displayName: r.display_name,
  createdAt: r.created_at,
});

export const searchColumnNames =
  "kind, user_state, email, phone, given_name, family_name, nick_name, display_name, created_at";

const textColumns: Record<UserTextField, string> = {
  username: "username",
  email: "email",
  phone: "phone",
  givenName: "given_name",
  familyName: "family_name",
  nickName: "nick_name",
  displayName: "display_name",
};

// Names and addresses sort without regard to case, as a person reading the list expects.
const sortExpressions = (lower: string): Record<UserSortField, string> => ({
  id: "id",
  username: `${lower}(username)`,
  email: `${lower}(email)`,
  givenName: `${lower}(given_name)`,
  familyName: `${lower}(family_name)`,
  nickName: `${lower}(nick_name)`,
  displayName: `${lower}(display_name)`,
  type: "kind",
  state: "user_state",
  createdAt: "created_at",
});

// Case is folded in every script: by PostgreSQL's lower() in the database's (UTF-8) locale, and on
// SQLite by Latchkey's own function, since SQLite's lower() folds ASCII letters only.
const lowerIn = (dialect: Dialect) => (dialect === "sqlite" ? sqliteLower : "lower");

export interface SqlStatement {
  readonly text: string;
  readonly values: (string | number)[];
}

class Params {
  readonly values: (string | number)[] = [];
  constructor(private readonly dialect: Dialect) {}
  add(value: string | number): string {
    this.values.push(value);
    return this.dialect === "postgres" ? `$${this.values.length}` : "?";
  }
}

const likeEscape = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);
// SQLite's LIKE ignores ASCII case whatever one asks; its GLOB is the case-sensitive twin, and
// a bracket makes any of GLOB's wildcards literal.
const globEscape = (v: string) => v.replace(/[*?[]/g, (c) => `[${c}]`);

function textCondition(p: Params, dialect: Dialect, column: string, method: TextMethod, value: string) {
  const ignoreCase = method.endsWith("IgnoreCase");
  const base = ignoreCase ? method.slice(0, -"IgnoreCase".length) : method;
  const lower = lowerIn(dialect);
  if (base === "equals")
    return ignoreCase ? `${lower}(${column}) = ${lower}(${p.add(value)})` : `${column} = ${p.add(value)}`;
  const before = base === "startsWith" ? "" : "*";
  const after = base === "endsWith" ? "" : "*";
  if (!ignoreCase && dialect === "sqlite")
    return `${column} GLOB ${p.add(before + globEscape(value) + after)}`;
  const pattern = before.replace("*", "%") + likeEscape(value) + after.replace("*", "%");
  return ignoreCase
    ? `${lower}(${column}) LIKE ${lower}(${p.add(pattern)}) ESCAPE '\\'`
    : `${column} LIKE ${p.add(pattern)} ESCAPE '\\'`;
}

function condition(f: UserFilter, p: Params, dialect: Dialect): string {
  switch (f.kind) {
    case "text":
      return textCondition(p, dialect, textColumns[f.field], f.method, f.value);
    case "org":
      return `org_id = ${p.add(f.orgId)}`;
    case "ids":
      return f.ids.length === 0 ? "1 = 0" : `id IN (${f.ids.map((id) => p.add(id)).join(", ")})`;
    case "emails": {
      const lower = lowerIn(dialect);
      return f.emails.length === 0
        ? "1 = 0"
        : `${lower}(email) IN (${f.emails.map((e) => `${lower}(${p.add(e)})`).join(", ")})`;
    }
    case "type":
      return `kind = ${p.add(f.type)}`;
    case "state":
      return `user_state = ${p.add(f.state)}`;
    case "always":
      return f.value ? "1 = 1" : "1 = 0";
    case "and":
    case "or": {
      // As in ZITADEL: all of nothing is true, any of nothing is false.
      if (f.filters.length === 0) return f.kind === "and" ? "1 = 1" : "1 = 0";
      const joiner = f.kind === "and" ? " AND " : " OR ";
      return `(${f.filters.map((inner) => condition(inner, p, dialect)).join(joiner)})`;
    }
    case "not":
      return `NOT (${condition(f.filter, p, dialect)})`;
  }
}

function whereClause(instanceId: string, s: UserSearch, p: Params, dialect: Dialect): string {
  const parts = [
    `instance_id = ${p.add(instanceId)}`,
    // The same test as the partial indexes' WHERE, so that the planner may use them.
    dialect === "sqlite" ? "deleted = 0" : "NOT deleted",
  ];
  if (!("all" in s.visible)) {
    const orgs = s.visible.orgIds.map((o) => p.add(o));
    const self = `id = ${p.add(s.visible.userId)}`;
    parts.push(orgs.length > 0 ? `(org_id IN (${orgs.join(", ")}) OR ${self})` : self);
  }
  parts.push(condition(s.filter, p, dialect));
  return parts.join(" AND ");
}

// Two statements: how many match, and the page asked for.
export function userSearchStatements(
  instanceId: string,
  s: UserSearch,
  dialect: Dialect,
): { count: SqlStatement; page: SqlStatement } {
  const countParams = new Params(dialect);
  const count = `SELECT count(*) AS total FROM users WHERE ${whereClause(instanceId, s, countParams, dialect)}`;

  const pageParams = new Params(dialect);
  const where = whereClause(instanceId, s, pageParams, dialect);
  const direction = s.ascending ? "ASC" : "DESC";
  // PostgreSQL orders text by the database's locale; byte order ("C") gives the order SQLite gives.
  const collate = dialect === "postgres" ? ' COLLATE "C"' : "";
  const keys = s.sort === "id" ? ["id"] : [sortExpressions(lowerIn(dialect))[s.sort], "id"];
  const orderBy = keys.map((k) => `${k}${collate} ${direction}`).join(", ");
  const limit = pageParams.add(s.limit);
  const offset = pageParams.add(s.offset);
  return {
    count: { text: count, values: countParams.values },
    page: {
      text: `SELECT state FROM users WHERE ${where} ORDER BY ${orderBy} LIMIT ${limit} OFFSET ${offset}`,
      values: pageParams.values,
    },
  };
}
