import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DetailsSchema } from "@zitadel/proto/zitadel/object/v2/object_pb.js";
import { type UserSchema, UserState as UserStateEnum } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import type { Details } from "../app/details.ts";
import type { UserState } from "../domain/user/state.ts";

export const ts = (d: Date) => timestampFromDate(d);
export const dateOf = (t: Timestamp | undefined) => (t ? timestampDate(t) : null);

// On writes ZITADEL reports the written event's time as both change and creation date.
export function detailsOut(d: Details): MessageInitShape<typeof DetailsSchema> {
  return {
    sequence: BigInt(d.sequence),
    changeDate: ts(d.changeDate),
    creationDate: ts(d.changeDate),
    resourceOwner: d.resourceOwner,
  };
}

export function userOut(u: UserState): MessageInitShape<typeof UserSchema> {
  const details = {
    sequence: BigInt(u.sequence),
    changeDate: ts(new Date(u.changedAt ?? 0)),
    creationDate: ts(new Date(u.createdAt ?? 0)),
    resourceOwner: u.orgId,
  };
  const state =
    u.state === "locked"
      ? UserStateEnum.LOCKED
      : u.state === "inactive"
        ? UserStateEnum.INACTIVE
        : UserStateEnum.ACTIVE;
  const common = {
    userId: u.id,
    details,
    state,
    username: u.username,
    loginNames: [u.username],
    preferredLoginName: u.username,
  };
  if (u.kind === "machine")
    return {
      ...common,
      type: {
        case: "machine",
        value: { name: u.machine?.name ?? "", description: u.machine?.description ?? "" },
      },
    };
  return {
    ...common,
    type: {
      case: "human",
      value: {
        userId: u.id,
        state,
        username: u.username,
        loginNames: [u.username],
        preferredLoginName: u.username,
        profile: u.profile ?? undefined,
        email: { email: u.email, isVerified: u.emailVerified },
        phone: { phone: u.phone ?? "", isVerified: u.phoneVerified },
        passwordChangeRequired: u.passwordChangeRequired,
      },
    },
  };
}
