import { channel } from "node:diagnostics_channel";
import type Database from "better-sqlite3";

// For tools that watch the store, such as the benchmark's --trace: each group commit, once its
// results are settled. Costs nothing while no one subscribes.
export interface FlushMessage {
  readonly writes: number;
  readonly commitMs: number;
  readonly flushMs: number;
}
const flushed = channel("latchkey:sqlite:flush");

interface Waiting {
  readonly work: () => unknown;
  readonly committed: ((value: never) => void) | undefined;
  readonly resolve: (value: never) => void;
  readonly reject: (reason: unknown) => void;
}

export interface GroupedOptions<T> {
  // Called with the unit's result as soon as the COMMIT returns, before any other code runs.
  readonly committed?: (value: T) => void;
  // No caller waits for it: it runs after the rest of its batch.
  readonly background?: boolean;
}

// better-sqlite3 is synchronous, so every COMMIT's fsync (synchronous=FULL) stops the only
// thread. Writes that arrive in the same turn of the event loop therefore share one
// BEGIN IMMEDIATE ... COMMIT: each runs as a nested db.transaction, i.e. in a SAVEPOINT of its
// own, so one that fails rolls back alone; none is answered before the shared COMMIT, so an
// acknowledged write is as durable as before. The returned function queues a unit of work, which
// must be a db.transaction (or touch nothing), and settles with its result after the commit.
// `committed` lets what the process remembers of the database move with it. Background work runs
// after the rest of its batch: when it and a caller's write were decided on the same state, the
// caller's goes first and wins.
export function groupCommit(
  db: Database.Database,
): <T>(work: () => T, options?: GroupedOptions<T>) => Promise<T> {
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const rollback = db.prepare("ROLLBACK");
  let queue: Waiting[] = [];
  let background: Waiting[] = [];

  function flush(): void {
    const traced = flushed.hasSubscribers;
    const started = traced ? performance.now() : 0;
    let commitMs = 0;
    const batch = queue.concat(background);
    queue = [];
    background = [];
    const settle: (() => void)[] = [];
    try {
      begin.run();
      for (const w of batch) {
        try {
          const value = w.work() as never;
          settle.push(() => {
            try {
              w.committed?.(value);
            } finally {
              w.resolve(value);
            }
          });
        } catch (err) {
          settle.push(() => w.reject(err));
        }
        // Some failures (a full disk, an I/O error) make SQLite end the whole transaction; the
        // ones already run in it are gone, so none of the batch may be reported as written.
        if (!db.inTransaction) throw new Error("SQLite rolled back the group transaction");
      }
      const committing = traced ? performance.now() : 0;
      commit.run();
      if (traced) commitMs = performance.now() - committing;
    } catch (err) {
      if (db.inTransaction) rollback.run();
      for (const w of batch) w.reject(err);
      return;
    }
    for (const s of settle) s();
    if (traced)
      flushed.publish({
        writes: batch.length,
        commitMs,
        flushMs: performance.now() - started,
      } satisfies FlushMessage);
  }

  return <T>(work: () => T, options: GroupedOptions<T> = {}) =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0 && background.length === 0) setImmediate(flush);
      (options.background ? background : queue).push({
        work,
        committed: options.committed as ((value: never) => void) | undefined,
        resolve: resolve as (value: never) => void,
        reject,
      });
    });
}
