import { alreadyExists, DomainError } from "../domain/errors.ts";
import { type AggregateRef, inLog, type NewEvent, type RecordedEvent } from "../domain/events.ts";
import type { AppDeps } from "./deps.ts";
import {
  type AggregateWrite,
  ConcurrencyError,
  type OutboxChange,
  QuotaExceeded,
  type ReadModelChange,
  UniqueViolation,
} from "./ports.ts";
import { limitError } from "./sms-outbox.ts";

export interface Plan<T> {
  readonly writes: readonly AggregateWrite[];
  readonly readModel: readonly ReadModelChange[];
  // SMS to send because of these events (or outcomes of sent ones), stored with them.
  readonly outbox?: readonly OutboxChange[];
  // Answered after the writes are stored (a decision that refuses but leaves a trace).
  readonly error?: Error | undefined;
  readonly result: (recorded: readonly RecordedEvent[]) => T;
}

// The events a write will become once stored: the fold needs them before the append to
// compute the read models that move in the same transaction.
export function stamp(
  ref: AggregateRef,
  owner: string,
  creator: string,
  after: number,
  now: Date,
  events: readonly NewEvent[],
): RecordedEvent[] {
  return events.map((e, i) =>
    inLog(e, {
      aggregateType: ref.type,
      aggregateId: ref.id,
      sequence: after + i + 1,
      owner,
      creator,
      createdAt: now,
      position: 0,
    }),
  );
}

// Runs plan -> append, and when another writer got there first, plans again on fresh state.
export async function transact<T>(
  deps: AppDeps,
  instanceId: string,
  creator: string,
  plan: (now: Date) => Promise<Plan<T>>,
  options: { readonly background?: boolean } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const now = deps.clock.now();
    const p = await plan(now);
    let recorded: RecordedEvent[] = [];
    const outbox = p.outbox ?? [];
    if (p.writes.some((w) => w.events.length > 0) || outbox.length > 0) {
      try {
        recorded = await deps.store.append({
          instanceId,
          creator,
          createdAt: now,
          writes: p.writes,
          readModel: p.readModel,
          outbox,
          background: options.background,
        });
        if (outbox.some((c) => c.kind === "enqueue")) deps.outboxReady();
      } catch (err) {
        if (err instanceof UniqueViolation && err.what === "username")
          throw alreadyExists("COMMAND-k2unb", "Username is already taken");
        if (err instanceof QuotaExceeded) throw limitError(err);
        if (!(err instanceof ConcurrencyError)) throw err;
        deps.metrics.conflict(options.background ? "background" : "caller");
        if (attempt >= deps.settings.maxConflictRetries) {
          deps.metrics.gaveUp();
          throw new DomainError("aborted", "LK-CONFLICT", "Too many concurrent changes; try again");
        }
        continue;
      }
      if (recorded.length > 0) deps.metrics.appended(recorded.length);
    }
    if (p.error) throw p.error;
    return p.result(recorded);
  }
}
