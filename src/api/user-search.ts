import { TextQueryMethod } from "@zitadel/proto/zitadel/object/v2/object_pb.js";
import { type SearchQuery, Type, UserFieldName } from "@zitadel/proto/zitadel/user/v2/query_pb.js";
import { UserState as UserStateEnum } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import type { ListUsersRequest } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import type { TextMethod, UserFilter, UserSortField, UserTextField } from "../app/ports.ts";
import type { UserListRequest } from "../app/queries.ts";
import { invalid } from "../domain/errors.ts";

const textMethods: Record<TextQueryMethod, TextMethod> = {
  [TextQueryMethod.EQUALS]: "equals",
  [TextQueryMethod.EQUALS_IGNORE_CASE]: "equalsIgnoreCase",
  [TextQueryMethod.STARTS_WITH]: "startsWith",
  [TextQueryMethod.STARTS_WITH_IGNORE_CASE]: "startsWithIgnoreCase",
  [TextQueryMethod.CONTAINS]: "contains",
  [TextQueryMethod.CONTAINS_IGNORE_CASE]: "containsIgnoreCase",
  [TextQueryMethod.ENDS_WITH]: "endsWith",
  [TextQueryMethod.ENDS_WITH_IGNORE_CASE]: "endsWithIgnoreCase",
};

const userStates: Partial<Record<UserStateEnum, "active" | "locked" | "inactive">> = {
  [UserStateEnum.ACTIVE]: "active",
  [UserStateEnum.LOCKED]: "locked",
  [UserStateEnum.INACTIVE]: "inactive",
};

const sortFields: Record<UserFieldName, UserSortField> = {
  [UserFieldName.UNSPECIFIED]: "id",
  [UserFieldName.USER_NAME]: "username",
  [UserFieldName.FIRST_NAME]: "givenName",
  [UserFieldName.LAST_NAME]: "familyName",
  [UserFieldName.NICK_NAME]: "nickName",
  [UserFieldName.DISPLAY_NAME]: "displayName",
  [UserFieldName.EMAIL]: "email",
  [UserFieldName.STATE]: "state",
  [UserFieldName.TYPE]: "type",
  [UserFieldName.CREATION_DATE]: "createdAt",
};

// As deep as ZITADEL lets and/or/not nest; and a bound on the values one search may carry,
// so that a request cannot outgrow what a database takes as parameters.
const maxNesting = 20;
const maxValues = 1000;

const invalidQuery = () => invalid("GRPC-vR9nC", "The search query is invalid");

function textMethod(m: TextQueryMethod): TextMethod {
  const method = textMethods[m];
  if (!method) throw invalid("LK-QUERY-METHOD", `Text query method ${m} is unknown`);
  return method;
}

export function userListRequest(req: ListUsersRequest): UserListRequest {
  let values = 0;
  const count = (n: number) => {
    values += n;
    if (values > maxValues) throw invalid("LK-QUERY-SIZE", `A search may carry at most ${maxValues} values`);
  };
  const text = (field: UserTextField, value: string, method: TextQueryMethod): UserFilter => {
    count(1);
    return { kind: "text", field, method: textMethod(method), value };
  };

  const filterOf = (q: SearchQuery | undefined, level: number): UserFilter => {
    if (level > maxNesting) throw invalid("USER-zsQ97", "The search query nests too deeply");
    const v = q?.query;
    switch (v?.case) {
      case "userNameQuery":
        return text("username", v.value.userName, v.value.method);
      // A Latchkey user's only login name is its username.
      case "loginNameQuery":
        return text("username", v.value.loginName, v.value.method);
      case "firstNameQuery":
        return text("givenName", v.value.firstName, v.value.method);
      case "lastNameQuery":
        return text("familyName", v.value.lastName, v.value.method);
      case "nickNameQuery":
        return text("nickName", v.value.nickName, v.value.method);
      case "displayNameQuery":
        return text("displayName", v.value.displayName, v.value.method);
      case "emailQuery":
        return text("email", v.value.emailAddress, v.value.method);
      case "phoneQuery":
        return text("phone", v.value.number, v.value.method);
      case "organizationIdQuery":
        count(1);
        return { kind: "org", orgId: v.value.organizationId };
      case "inUserIdsQuery":
        count(v.value.userIds.length);
        return { kind: "ids", ids: v.value.userIds };
      case "inUserEmailsQuery":
        count(v.value.userEmails.length);
        return { kind: "emails", emails: v.value.userEmails };
      case "typeQuery":
        if (v.value.type === Type.HUMAN) return { kind: "type", type: "human" };
        if (v.value.type === Type.MACHINE) return { kind: "type", type: "machine" };
        return { kind: "always", value: false };
      case "stateQuery": {
        const state = userStates[v.value.state];
        // Deleted users are never listed, and Latchkey has no initial state.
        return state ? { kind: "state", state } : { kind: "always", value: false };
      }
      case "andQuery":
        return { kind: "and", filters: v.value.queries.map((inner) => filterOf(inner, level + 1)) };
      case "orQuery":
        return { kind: "or", filters: v.value.queries.map((inner) => filterOf(inner, level + 1)) };
      case "notQuery":
        return { kind: "not", filter: filterOf(v.value.query, level + 1) };
      default:
        throw invalidQuery();
    }
  };

  const sort = sortFields[req.sortingColumn];
  if (!sort) throw invalid("LK-QUERY-SORT", `Sorting column ${req.sortingColumn} is unknown`);
  const offset = req.query?.offset ?? 0n;
  return {
    filter: { kind: "and", filters: req.queries.map((q) => filterOf(q, 0)) },
    sort,
    // As in ZITADEL, descending unless asked otherwise.
    ascending: req.query?.asc ?? false,
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset),
    limit: req.query?.limit ?? 0,
  };
}
