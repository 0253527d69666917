// Adds and removals of OTP SMS sent to several Latchkey nodes over REST and gRPC, each answer
// sorted, and the checks that hold the event log to the writes the nodes acknowledged.
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Store } from "../../src/app/ports.ts";
import { UserEvent } from "../../src/domain/user/events.ts";
import { clients, rest } from "./clients.ts";

export type Via = "rest" | "grpc";

export interface OtpCall {
  readonly userId: string;
  readonly add: boolean;
  readonly node: number;
  readonly via: Via;
}

// A write a node acknowledged, with the sequence it reported.
export interface Ack {
  readonly userId: string;
  readonly sequence: number;
  readonly type: string;
  readonly call: OtpCall;
}

export type Outcome =
  | { readonly kind: "ack"; readonly ack: Ack }
  // AlreadyExists for an add, NotFound for a removal: the answer the state called for.
  | { readonly kind: "refused" }
  | { readonly kind: "unavailable" }
  | { readonly kind: "other"; readonly what: string };

const typeOf = (add: boolean) => (add ? UserEvent.otpSmsAdded : UserEvent.otpSmsRemoved);

export function otpSender(urls: readonly string[], token: string) {
  const grpc = urls.map((u) => clients(u, token, "grpc"));
  const describe = (c: OtpCall) => `${c.add ? "add" : "remove"} ${c.userId} via ${c.via} on node ${c.node}`;

  return async (call: OtpCall): Promise<Outcome> => {
    const refusal = call.add ? Code.AlreadyExists : Code.NotFound;
    if (call.via === "rest") {
      let res: Awaited<ReturnType<typeof rest>>;
      try {
        res = await rest(urls[call.node]!, call.add ? "POST" : "DELETE", `/v2/users/${call.userId}/otp_sms`, {
          token,
          body: call.add ? {} : undefined,
        });
      } catch (err) {
        return { kind: "other", what: `${describe(call)}: ${String(err)}` };
      }
      if (res.status === 200)
        return {
          kind: "ack",
          ack: {
            userId: call.userId,
            sequence: Number(res.body.details.sequence),
            type: typeOf(call.add),
            call,
          },
        };
      if (res.body?.code === refusal) return { kind: "refused" };
      if (res.status === 503 && res.body?.code === Code.Unavailable) return { kind: "unavailable" };
      return { kind: "other", what: `${describe(call)}: HTTP ${res.status} ${JSON.stringify(res.body)}` };
    }
    const users = grpc[call.node]!.users;
    try {
      const res = call.add
        ? await users.addOTPSMS({ userId: call.userId })
        : await users.removeOTPSMS({ userId: call.userId });
      return {
        kind: "ack",
        ack: { userId: call.userId, sequence: Number(res.details?.sequence), type: typeOf(call.add), call },
      };
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === refusal) return { kind: "refused" };
      if (e.code === Code.Unavailable) return { kind: "unavailable" };
      return { kind: "other", what: `${describe(call)}: ${Code[e.code]} ${e.message}` };
    }
  };
}

// Every user's log counts 1, 2, 3, ...; every acknowledged write is in it exactly once, at the
// sequence it was acknowledged with, as the event it was; the OTP events alternate, as the
// decisions allow. With `onlyAcked`, no OTP event is in the log that was not acknowledged.
export async function checkLog(
  store: Store,
  instanceId: string,
  userIds: readonly string[],
  acks: readonly Ack[],
  opts: { onlyAcked: boolean },
): Promise<void> {
  for (const userId of userIds) {
    const events = await store.loadEvents(instanceId, { type: "user", id: userId }, 0);
    assert.deepEqual(
      events.map((e) => e.sequence),
      events.map((_, i) => i + 1),
      `sequences of ${userId}`,
    );
    const mine = acks.filter((a) => a.userId === userId);
    const sequences = mine.map((a) => a.sequence);
    assert.equal(
      new Set(sequences).size,
      sequences.length,
      `two acknowledgements share a sequence: ${sequences}`,
    );
    for (const a of mine)
      assert.equal(
        events[a.sequence - 1]?.type,
        a.type,
        `acknowledged ${a.type} at ${a.sequence} of ${userId}`,
      );
    const otp = events.filter((e) => e.type === UserEvent.otpSmsAdded || e.type === UserEvent.otpSmsRemoved);
    for (const [i, e] of otp.entries())
      assert.equal(e.type, i % 2 === 0 ? UserEvent.otpSmsAdded : UserEvent.otpSmsRemoved, `${userId}`);
    if (opts.onlyAcked) assert.equal(otp.length, mine.length, `OTP events of ${userId} not acknowledged`);
  }
}
