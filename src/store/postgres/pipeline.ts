import pg from "pg";

// A statement of fixed text that runs often gets a name: each pooled connection then has
// PostgreSQL parse and plan it once, and from then on only binds and executes it.
export interface Prepared {
  readonly name: string;
  readonly text: string;
}

export function prepared<K extends string>(prefix: string, texts: Record<K, string>): Record<K, Prepared> {
  const out: Partial<Record<K, Prepared>> = {};
  for (const key of Object.keys(texts) as K[]) out[key] = { name: `lk_${prefix}_${key}`, text: texts[key] };
  return out as Record<K, Prepared>;
}

export interface Statement {
  // Absent: parsed afresh each time (unnamed).
  readonly name?: string;
  readonly text: string;
  readonly values: readonly (string | null)[];
}

// Field by field rather than { ...p, values }: V8 allocates a spread followed by a field its
// source lacks in the old generation (domain/events.ts, inLog), and this runs for every statement.
export const bound = (p: Prepared, values: readonly (string | null)[]): Statement => ({
  name: p.name,
  text: p.text,
  values,
});

type Field = { readonly name: string; readonly dataTypeID: number };

// What one statement of a pipeline answered: the rows as the server's text, and, when the
// pipeline asked for them, the columns' names and types.
export interface StatementResult {
  readonly rows: (string | null)[][];
  readonly fields: readonly Field[] | null;
}

// The rows as pg's own queries give them: one object per row, each column read by pg's parser
// for its type (jsonb parsed, timestamptz a Date, bigint left as text).
export function rowObjects<R>(result: StatementResult | undefined): R[] {
  if (!result?.fields) return [];
  const fields = result.fields;
  const parsers = fields.map((f) => pg.types.getTypeParser(f.dataTypeID, "text"));
  return result.rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) {
      const text = row[i] ?? null;
      out[(fields[i] as Field).name] = text === null ? null : (parsers[i] as (t: string) => unknown)(text);
    }
    return out as R;
  });
}

// What pg's connection remembers of the statements it has named (pg's own queries read it too).
const namedOn = (connection: pg.Connection): Record<string, string> =>
  (connection as unknown as { parsedStatements: Record<string, string> }).parsedStatements;

// Several statements in one round trip: Parse/Bind/Execute for each, then a single Sync. Up to
// that Sync the server runs them in one implicit transaction, committed at the Sync; at the first
// error it skips the rest and rolls all of them back (after a BEGIN among them, the transaction
// stays open, aborted, until a ROLLBACK). pg's own Query would add a Sync (and a round trip) per
// statement, so this speaks the extended protocol itself through pg's Submittable hook.
// `describe` also asks for each statement's columns, so that its rows can be read as pg reads them.
export class Pipeline {
  readonly done: Promise<StatementResult[]>;
  private readonly results: StatementResult[] = [];
  private rows: (string | null)[][] = [];
  private fields: Field[] | null = null;
  private settle: { resolve: (r: StatementResult[]) => void; reject: (e: unknown) => void } | null = null;
  private detach: (() => void) | null = null;

  constructor(
    private readonly statements: readonly Statement[],
    private readonly describe = false,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  submit(connection: pg.Connection): void {
    const named = namedOn(connection);
    const parsing = new Set<string>();
    const parses: (Prepared | null)[] = [];
    // One write for the whole pipeline. The `true` arguments satisfy @types/pg; pg 8 ignores them.
    connection.stream.cork();
    try {
      for (const s of this.statements) {
        const name = s.name ?? "";
        if (name === "" || (named[name] === undefined && !parsing.has(name))) {
          connection.parse({ name, text: s.text, types: [] }, true);
          parses.push(name === "" ? null : { name, text: s.text });
          if (name !== "") parsing.add(name);
        }
        connection.bind({ portal: "", statement: name, values: [...s.values] }, true);
        if (this.describe) connection.describe({ type: "P", name: "" }, true);
        connection.execute({ portal: "" }, true);
      }
      connection.sync();
    } finally {
      connection.stream.uncork();
    }
    // A name is remembered once the server confirms its Parse (they are confirmed in order), so
    // an error part way, after which the server parses nothing more, cannot leave a name
    // remembered that was never created.
    if (parsing.size > 0) {
      const onParsed = () => {
        const p = parses.shift();
        if (p) named[p.name] = p.text;
      };
      connection.on("parseComplete", onParsed);
      this.detach = () => connection.off("parseComplete", onParsed);
    }
  }

  private finish(): void {
    this.detach?.();
    this.detach = null;
  }

  // A statement that returns no rows answers NoData instead, which pg passes to no one.
  handleRowDescription(msg: { fields: Field[] }): void {
    this.fields = msg.fields;
  }
  // Never comes (no statement is empty); here so that an unexpected message cannot throw
  // inside pg's client.
  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }
  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.rows.push(msg.fields);
  }
  handleCommandComplete(): void {
    this.results.push({ rows: this.rows, fields: this.fields });
    this.rows = [];
    this.fields = null;
  }
  handleError(err: unknown): void {
    this.finish();
    this.settle?.reject(err);
    this.settle = null;
  }
  handleReadyForQuery(): void {
    this.finish();
    this.settle?.resolve(this.results);
    this.settle = null;
  }
}
