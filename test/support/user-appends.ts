// Appends of one user's changes, made as the application makes them (decided, stamped, folded,
// projected), for tests that drive a store directly.
import type { AppendRequest } from "../../src/app/ports.ts";
import { projectUser } from "../../src/app/projection.ts";
import { stamp } from "../../src/app/transact.ts";
import type { Decision } from "../../src/domain/events.ts";
import * as user from "../../src/domain/user/decide.ts";
import { foldUser, type UserState } from "../../src/domain/user/state.ts";

export const instanceId = "inst";
export const orgId = "org";

export function change(
  before: UserState,
  decide: (s: UserState) => Decision,
  expectedSequence = before.sequence,
): { request: AppendRequest; after: UserState } {
  const events = decide(before).events;
  const createdAt = new Date();
  const ref = { type: "user" as const, id: before.id };
  const stamped = stamp(ref, orgId, "creator", expectedSequence, createdAt, events);
  const after = foldUser(before, stamped);
  const request: AppendRequest = {
    instanceId,
    creator: "creator",
    createdAt,
    writes: [{ ref, owner: orgId, expectedSequence, events }],
    readModel: projectUser(after, stamped),
  };
  return { request, after };
}

export const addHuman = (username: string) => (s: UserState) =>
  user.addHuman(s, {
    username,
    profile: {
      givenName: "Ada",
      familyName: username,
      nickName: "",
      displayName: `Ada ${username}`,
      preferredLanguage: "",
      gender: 0,
    },
    email: `${username}@example.com`,
    emailVerified: true,
    phone: { phone: "+41791234567", verified: true },
  });
