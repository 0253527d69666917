import { channel } from "node:diagnostics_channel";
import { StoreUnavailable } from "../../app/ports.ts";
import type { Statement, StatementResult } from "./pipeline.ts";

// Runs statements on one pooled connection in one round trip, all or none (a pipeline).
export type Send = (statements: readonly Statement[]) => Promise<StatementResult[]>;

interface Unit {
  readonly statements: readonly Statement[];
  readonly locks: readonly string[];
  readonly queuedAt: number;
  readonly resolve: (results: StatementResult[]) => void;
  readonly reject: (err: unknown) => void;
}

// For tools that watch the store, such as the benchmark's --trace: each batch the database
// answered. Costs nothing while no one subscribes.
export interface BatchMessage {
  readonly name: string;
  readonly units: number;
  readonly statements: number;
  // From the first unit's arrival to the batch's sending, and from sending to the answer.
  readonly waitedMs: number;
  readonly roundTripMs: number;
}
const answered = channel("latchkey:postgres:batch");

export interface BatcherOptions {
  // Names the batcher in what it publishes.
  readonly name?: string;
  // Batches on their way at once; a new batch forms from what waits meanwhile.
  readonly inFlight: number;
  // A batch closes at this many statements, or sooner when fewer wait; a larger unit goes alone.
  readonly statements: number;
  // A unit that waited this long for its batch to form is not sent: it hears that the store is
  // unavailable, as a query that waited this long for a pooled connection would. Without it, a
  // database that answers slowly or not at all would let the queue, and each wait, grow without end.
  readonly maxWaitMs: number;
  // The statement that takes the named locks, all at once and always in one order, until the
  // transaction ends.
  readonly lock?: (keys: readonly string[]) => Statement;
}

// Units of statements that ask for the database in the same turn of the event loop go as one
// pipeline, one transaction, one write and one answer, instead of one round trip each: on two
// shared cores, waking the server and this process once per query cost more than the queries.
// A unit succeeds or fails as if it had been sent alone: when the database refuses a batch, it
// has rolled all of it back, so each unit is sent again by itself to learn its own answer. A
// batch whose fate is unknown (the connection failed, the server went silent) is not sent
// again: every unit in it hears that the store is unavailable.
export class Batcher {
  private queue: Unit[] = [];
  private sending = 0;
  private scheduled = false;

  constructor(
    private readonly send: Send,
    private readonly options: BatcherOptions,
  ) {}

  // `locks` names what a unit writes. A batch first takes the locks of all its units, so
  // that two batches (of one node or of two) that write the same things wait for each other to
  // commit instead of each holding what the other needs until PostgreSQL's deadlock check (a
  // second, by default) or the statement timeout ends one of them, whatever order each unit
  // writes in.
  run(statements: readonly Statement[], locks: readonly string[] = []): Promise<StatementResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ statements, locks, queuedAt: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  // Waits for the rest of this turn's callers before sending.
  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.sending >= this.options.inFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.sendNext();
    });
  }

  private take(): Unit[] {
    const units: Unit[] = [];
    const expiredBefore = performance.now() - this.options.maxWaitMs;
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Unit;
      if (next.queuedAt < expiredBefore) {
        this.queue.shift();
        next.reject(
          new StoreUnavailable(`PostgreSQL was too busy to take this within ${this.options.maxWaitMs} ms`),
        );
        continue;
      }
      if (units.length > 0 && count + next.statements.length > this.options.statements) break;
      units.push(next);
      count += next.statements.length;
      this.queue.shift();
    }
    // Also in the order of what each unit writes first: then a node of a version that took no
    // locks yet (during a rolling upgrade) meets rows in the order it takes them itself, and the
    // batch visits neighbouring index pages together.
    const first = (u: Unit) => u.locks[0] ?? "";
    return units.sort((a, b) => (first(a) < first(b) ? -1 : first(a) > first(b) ? 1 : 0));
  }

  // The units' statements, after the statement that takes all their locks.
  private statementsOf(units: readonly Unit[]): { statements: Statement[]; skip: number } {
    const statements = units.flatMap((u) => u.statements);
    const keys = units.flatMap((u) => u.locks);
    if (!this.options.lock || keys.length === 0) return { statements, skip: 0 };
    return { statements: [this.options.lock(keys), ...statements], skip: 1 };
  }

  private async sendNext(): Promise<void> {
    const units = this.take();
    if (units.length === 0) return;
    this.sending++;
    this.schedule();
    try {
      await this.sendBatch(units);
    } finally {
      this.sending--;
      this.schedule();
    }
  }

  private async sendBatch(units: Unit[]): Promise<void> {
    let results: StatementResult[];
    const { statements, skip } = this.statementsOf(units);
    const traced = answered.hasSubscribers;
    const sentAt = traced ? performance.now() : 0;
    try {
      results = await this.send(statements);
      if (traced)
        answered.publish({
          name: this.options.name ?? "",
          units: units.length,
          statements: statements.length,
          waitedMs: sentAt - Math.min(...units.map((u) => u.queuedAt)),
          roundTripMs: performance.now() - sentAt,
        } satisfies BatchMessage);
    } catch (err) {
      if (units.length === 1 || err instanceof StoreUnavailable) {
        for (const u of units) u.reject(err);
        return;
      }
      await Promise.all(
        units.map((u) => {
          const alone = this.statementsOf([u]);
          return this.send(alone.statements).then(
            (r) => u.resolve(r.slice(alone.skip)),
            (e: unknown) => u.reject(e),
          );
        }),
      );
      return;
    }
    let at = skip;
    for (const u of units) {
      u.resolve(results.slice(at, at + u.statements.length));
      at += u.statements.length;
    }
  }
}
