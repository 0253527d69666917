import assert from "node:assert/strict";
import { DomainError, type ErrorKind } from "../../src/domain/errors.ts";
import type { AggregateType, Decision, NewEvent, RecordedEvent } from "../../src/domain/events.ts";
import type { SignInDecision } from "../../src/domain/session/decide.ts";
import { emptySession, foldSession, type SessionState } from "../../src/domain/session/state.ts";
import { emptyUser, foldUser, type UserState } from "../../src/domain/user/state.ts";

const at = new Date("2026-01-01T00:00:00Z");

export function recorded(
  events: readonly NewEvent[],
  owner = "org1",
  aggregate: { type: AggregateType; id: string } = { type: "user", id: "u1" },
): RecordedEvent[] {
  return events.map((e, i) => ({
    ...e,
    aggregateType: aggregate.type,
    aggregateId: aggregate.id,
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

const isError = (kind: ErrorKind, id: string) => (err: unknown) =>
  err instanceof DomainError && err.kind === kind && err.id === id;

// The same for a session step, which decides events for the session and for its user at once.
export function givenSession(...history: NewEvent[]) {
  const state: SessionState = foldSession(
    emptySession("s1"),
    recorded(history, "instance1", { type: "session", id: "s1" }),
  );
  return {
    state,
    when(step: (s: SessionState) => SignInDecision) {
      return {
        thenEmits(session: NewEvent[], user: NewEvent[] = []) {
          const d = step(state);
          assert.equal(d.error, undefined);
          assert.deepEqual(d.session, session);
          assert.deepEqual(d.user, user);
        },
        // Refused, with the failure still recorded on the user and nothing on the session.
        thenRecordsFailure(user: NewEvent[], kind: ErrorKind, id: string) {
          const d = step(state);
          assert.deepEqual(d.session, []);
          assert.deepEqual(d.user, user);
          assert.ok(isError(kind, id)(d.error), String(d.error));
        },
        rejects(kind: ErrorKind, id: string) {
          assert.throws(() => step(state), isError(kind, id));
        },
      };
    },
  };
}

// A user state from its history, for steps that need the session's user.
export const userFrom = (...history: NewEvent[]): UserState => foldUser(emptyUser("u1"), recorded(history));
