import assert from "node:assert/strict";
import { DomainError, type ErrorKind } from "../../src/domain/errors.ts";
import type { Decision, NewEvent, RecordedEvent } from "../../src/domain/events.ts";
import { emptyUser, foldUser, type UserState } from "../../src/domain/user/state.ts";

const at = new Date("2026-01-01T00:00:00Z");

export function recorded(events: readonly NewEvent[], owner = "org1"): RecordedEvent[] {
  return events.map((e, i) => ({
    ...e,
    aggregateType: "user",
    aggregateId: "u1",
    sequence: i + 1,
    owner,
    creator: "admin",
    createdAt: at,
    position: i + 1,
  }));
}

// given(events).when(decision).thenEmits(events) / .rejects(kind, id): a decision's whole contract
// on the events that came before it.
export function given(...history: NewEvent[]) {
  const state: UserState = foldUser(emptyUser("u1"), recorded(history));
  return {
    state,
    when(decide: (s: UserState) => Decision) {
      return {
        thenEmits(...expected: NewEvent[]) {
          const d = decide(state);
          assert.equal(d.error, undefined);
          assert.deepEqual(d.events, expected);
        },
        thenWithError(expected: NewEvent[], kind: ErrorKind, id: string) {
          const d = decide(state);
          assert.deepEqual(d.events, expected);
          assert.ok(d.error instanceof DomainError);
          assert.equal(d.error.kind, kind);
          assert.equal(d.error.id, id);
        },
        rejects(kind: ErrorKind, id: string) {
          assert.throws(
            () => decide(state),
            (err: unknown) => err instanceof DomainError && err.kind === kind && err.id === id,
          );
        },
      };
    },
  };
}
