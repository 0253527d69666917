// What this machine can do at best, measured with the same load generator and concurrency as
// Latchkey itself. Started by bench/run.ts as a child process, in one of three modes:
//   http:  a bare node:http server answering a JSON body as large as Latchkey's (C_http);
//   rpc:   a no-op UserService behind a Connect router on Latchkey's own one-port listener (C_rpc);
//   store: one event row per transaction into Latchkey's events table, in a tight loop (C_store).
import { randomBytes } from "node:crypto";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import Database from "better-sqlite3";
import pg from "pg";
import { loadConfig } from "../src/config.ts";
import { listen } from "../src/server/listener.ts";
import {
  answer,
  busyCores,
  childSettings,
  machineTicks,
  postgresCpu,
  postgresSecondsBetween,
} from "./children.ts";

export type CeilingSettings =
  | { readonly mode: "http"; readonly bodyBytes: number }
  | { readonly mode: "rpc" }
  | {
      readonly mode: "store";
      readonly database: { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
      readonly concurrency: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    };

export interface ServerReady {
  readonly port: number;
}

export interface StoreResult {
  readonly transactionsPerSecond: number;
  readonly transactions: number;
  readonly connections: number;
  // As in LoadResult: what the rest of the machine was doing meanwhile.
  readonly postgresCores: number;
  readonly otherCores: number;
}

// Wraps a measured window with CPU readings of this process, PostgreSQL and the machine.
function usage() {
  const start = { own: process.cpuUsage(), machine: machineTicks(), postgres: postgresCpu() };
  return (seconds: number) => {
    const own = process.cpuUsage(start.own);
    const ownCores = (own.user + own.system) / 1e6 / seconds;
    const postgresCores = postgresSecondsBetween(start.postgres, postgresCpu()) / seconds;
    const machine = busyCores(start.machine, machineTicks());
    return { postgresCores, otherCores: Math.max(0, machine - ownCores - postgresCores) };
  };
}

// A body shaped like Latchkey's answer, padded to the same byte count so that both servers
// write the same amount per call.
function bodyOfSize(bytes: number): object {
  const shape = {
    details: {
      sequence: "4",
      changeDate: new Date().toISOString(),
      resourceOwner: "",
      creationDate: new Date().toISOString(),
    },
  };
  const missing = Math.max(0, bytes - Buffer.byteLength(JSON.stringify(shape)));
  shape.details.resourceOwner = "9".repeat(missing);
  return shape;
}

function serveHttp(bodyBytes: number): Promise<number> {
  const body = bodyOfSize(bodyBytes);
  const server = http.createServer((req, res) => {
    // The request body is read, as any JSON API must, before answering.
    req.resume();
    req.on("end", () => {
      const payload = JSON.stringify(body);
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
      });
      res.end(payload);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(portOf(server))));
}

const portOf = (server: http.Server) => (server.address() as { port: number }).port;

async function serveRpc(): Promise<number> {
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(UserService, {
        async addOTPSMS() {
          return {};
        },
        async removeOTPSMS() {
          return {};
        },
      });
    },
  });
  const listener = await listen(handler, {
    port: 0,
    host: "127.0.0.1",
    ...loadConfig({}).limits,
    onHandlerError: (err) => console.error(err),
  });
  return listener.port;
}

const eventInsert = `INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at)`;

// Random aggregate ids put each row at a random place in the (instance, aggregate, sequence)
// index, as the load's round robin over many users does; an ever-growing id would only append.
const randomId = () => BigInt(`0x${randomBytes(7).toString("hex")}`).toString();

async function sqliteStore(path: string, warmupMs: number, durationMs: number): Promise<StoreResult> {
  const db = new Database(path);
  // The pragmas of src/store/sqlite/store.ts: the durability being measured is the same.
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  const instance = (db.prepare("SELECT id FROM instances LIMIT 1").get() as { id: string }).id;
  const insert = db.prepare(
    `${eventInsert} VALUES (?, 'user', ?, 1, 'user.human.mfa.otp.sms.added', NULL, ?, ?, ?)`,
  );
  const creator = randomId();
  const owner = randomId();
  // IMMEDIATE, as the store's own appends: the write lock is taken at BEGIN.
  const append = db.transaction(() =>
    insert.run(instance, randomId(), creator, owner, new Date().toISOString()),
  );
  const start = performance.now();
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  let counted = 0;
  let finish: ReturnType<typeof usage> | null = null;
  // better-sqlite3 is synchronous: one writer in a tight loop is all SQLite can use, whatever
  // the concurrency of the load.
  for (;;) {
    const now = performance.now();
    if (now >= windowEnd) break;
    if (now >= windowStart) {
      finish ??= usage();
      counted++;
    }
    append.immediate();
  }
  const seconds = durationMs / 1000;
  const cpu = finish ? finish(seconds) : { postgresCores: 0, otherCores: 0 };
  db.close();
  return { transactionsPerSecond: counted / seconds, transactions: counted, connections: 1, ...cpu };
}

async function postgresStore(
  url: string,
  connections: number,
  warmupMs: number,
  durationMs: number,
): Promise<StoreResult> {
  const clients = Array.from({ length: connections }, () => new pg.Client({ connectionString: url }));
  await Promise.all(clients.map((c) => c.connect()));
  const { rows } = await clients[0]!.query<{ id: string }>("SELECT id FROM instances LIMIT 1");
  const instance = rows[0]!.id;
  const text = `${eventInsert} VALUES ($1, 'user', $2, 1, 'user.human.mfa.otp.sms.added', NULL, $3, $4, $5)`;
  const creator = randomId();
  const owner = randomId();
  const start = performance.now();
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  let counted = 0;
  let finish: ReturnType<typeof usage> | null = null;
  const windowTimer = setTimeout(() => {
    finish = usage();
  }, warmupMs);
  // One statement outside BEGIN is one transaction and one round trip, committed with the
  // server's default synchronous_commit, as Latchkey's pipelined append is.
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < windowEnd) {
        await c.query(text, [instance, randomId(), creator, owner, new Date().toISOString()]);
        const done = performance.now();
        if (done >= windowStart && done <= windowEnd) counted++;
      }
    }),
  );
  clearTimeout(windowTimer);
  const seconds = durationMs / 1000;
  const cpu = finish ? (finish as ReturnType<typeof usage>)(seconds) : { postgresCores: 0, otherCores: 0 };
  await Promise.all(clients.map((c) => c.end()));
  return { transactionsPerSecond: counted / seconds, transactions: counted, connections, ...cpu };
}

if (process.env.BENCH_CHILD) {
  const s = childSettings<CeilingSettings>();
  const run = async () => {
    if (s.mode === "http") return answer({ port: await serveHttp(s.bodyBytes) } satisfies ServerReady);
    if (s.mode === "rpc") return answer({ port: await serveRpc() } satisfies ServerReady);
    const result =
      s.database.kind === "sqlite"
        ? await sqliteStore(s.database.path, s.warmupMs, s.durationMs)
        : await postgresStore(s.database.url, s.concurrency, s.warmupMs, s.durationMs);
    await answer(result);
    process.exit(0);
  };
  process.on("SIGTERM", () => process.exit(0));
  run().catch((err) => {
    process.stderr.write(`ceiling failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
