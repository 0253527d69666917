import type { AppendRequest } from "../../app/ports.ts";
import { bound, type Prepared, type Statement } from "./pipeline.ts";

// Every append first takes, in one statement and sorted, the locks of the aggregates it writes
// (and of the sending limits it counts), held until it commits: two appends that write the same
// aggregates, each in whatever order, then wait for each other instead of each holding a row the
// other needs until PostgreSQL's deadlock check ends one of them. A limit's lock also serializes
// its counting across nodes. The keys are sorted by code unit, not by locale, so that every node
// orders them alike, and locked in that order: the scan yields them in array order, which ORDER
// BY n states (EXPLAIN shows no sort; were there one, PostgreSQL would call the volatile lock
// function after it).
const takeLocks: Prepared = {
  name: "lk_take_locks",
  text: `SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
    FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS k(key, n) ORDER BY n`,
};
export const lockStatement = (keys: readonly string[]): Statement =>
  bound(takeLocks, [JSON.stringify([...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))]);
export const aggregateLocks = (req: AppendRequest): string[] =>
  req.writes.map((w) => `${req.instanceId}/${w.ref.type}/${w.ref.id}`);
