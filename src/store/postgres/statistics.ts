import type pg from "pg";

// PostgreSQL's planner chooses indexes from a table's statistics, and a table that was never
// analyzed looks all but empty to it. Every condition here starts with instance_id, which any
// of a table's indexes can serve, so a plan made then may pick an index that holds the whole
// instance; each pooled connection keeps that plan until the statistics change. On a fresh
// database that made loading one user read every event, slower with each event written
// (docs/benchmarks.md). Autovacuum normally analyzes a new table within a minute or so, but it
// can be turned off or fall behind. So the store analyzes each of its tables once: the first
// time the table has grown enough to matter and still has no statistics. Keeping statistics
// current after that is autovacuum's job.

// Below this many rows written, any plan reads the table in no time.
const rowsThatMatter = 100;

const neverAnalyzed = `SELECT relname, n_mod_since_analyze AS written FROM pg_stat_user_tables
  WHERE schemaname = current_schema() AND last_analyze IS NULL AND last_autoanalyze IS NULL`;

export interface StatisticsKeeper {
  stop(): Promise<void>;
}

// A look that fails is simply made again at the next tick.
export function keepFirstStatistics(pool: pg.Pool, everyMs: number): StatisticsKeeper {
  // Tables ANALYZE failed on (another owner, say): not tried again on every look.
  const refused = new Set<string>();
  let stopped = false;
  let look: Promise<void> | null = null;

  async function analyzeNew(): Promise<void> {
    const { rows } = await pool.query<{ relname: string; written: string }>(neverAnalyzed);
    const pending = rows.filter((r) => !refused.has(r.relname));
    for (const r of pending) {
      if (stopped) return;
      if (Number(r.written) < rowsThatMatter) continue;
      try {
        await pool.query(`ANALYZE ${quoteIdentifier(r.relname)}`);
      } catch {
        refused.add(r.relname);
      }
    }
    if (pending.length === 0) clearInterval(timer);
  }

  const timer = setInterval(() => {
    if (look || stopped) return;
    look = analyzeNew()
      .catch(() => {})
      .finally(() => {
        look = null;
      });
  }, everyMs);
  // Never what keeps a process alive.
  timer.unref();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await look;
    },
  };
}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
