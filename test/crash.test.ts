import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { verify } from "../src/app/verify.ts";
import type { DatabaseConfig } from "../src/config.ts";
import type { RecordedEvent } from "../src/domain/events.ts";
import { openStore } from "../src/store/open.ts";
import { type Clients, clients, type Protocol, rest } from "./support/clients.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";
import { killAll, latchkeyBin, spawnLatchkey } from "./support/process.ts";

// kill -9 under load. Writers on every protocol create users (three events in one write),
// organizations with a new admin (events on two aggregates in one write) and add and remove
// OTP SMS; at a random moment the process is killed and started again on the same database.
// Then every write a client saw acknowledged must be in the log at the sequence it was told,
// every write (acknowledged or not) must be there whole or not at all, and the read models must
// equal the fold of the log (`latchkey verify`). `npm test` runs a few rounds; `npm run chaos`
// runs LATCHKEY_CHAOS_ROUNDS (25 by default there).
const rounds = Number(process.env.LATCHKEY_CHAOS_ROUNDS ?? 3);
const seed = Number(
  process.env.LATCHKEY_CHAOS_SEED ?? (process.env.LATCHKEY_CHAOS_ROUNDS ? Date.now() % 2 ** 31 : 7),
);

// A small seeded generator, so that a failing run can be replayed with its seed.
function prng(s: number) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const human = ["user.human.added", "user.human.phone.changed", "user.human.phone.verified"];

// One write as a client made it: what the log must hold if it happened.
interface Write {
  readonly what: string;
  // Aggregate -> event types from sequence `from` on, all of them or none.
  expect: readonly { type: "user" | "org"; id: string; from: number; types: readonly string[] }[];
  acknowledged: boolean;
}

const protocolsWithRest: readonly (Protocol | "rest")[] = ["grpc", "grpc-web", "connect", "rest"];

async function writer(
  url: string,
  token: string,
  protocol: Protocol | "rest",
  name: string,
  random: () => number,
  writes: Write[],
  stop: { now: boolean },
  unexpected: string[],
) {
  const c: Clients | null = protocol === "rest" ? null : clients(url, token, protocol);
  // A write that fails while the server runs is a finding; one cut off by the kill is not: its
  // outcome is for the check after the restart.
  const failed = (err: unknown, w: Write) => {
    if (!stop.now) unexpected.push(`${w.what}: ${err instanceof Error ? err.message : String(err)}`);
  };
  // Users this writer knows the state of: acknowledged, and not touched by an unanswered write.
  const known: { id: string; sequence: number; otp: boolean }[] = [];
  let n = 0;
  while (!stop.now) {
    const pick = random();
    const ready = known.length > 0 ? known[Math.floor(random() * known.length)] : undefined;
    let w: Write;
    let call: () => Promise<number>;
    if (ready && pick < 0.5) {
      const type = ready.otp ? "user.human.mfa.otp.sms.removed" : "user.human.mfa.otp.sms.added";
      // Its sequence is known only from the answer: the SMS worker also writes to users.
      w = {
        what: `${type} ${ready.id}`,
        expect: [],
        acknowledged: false,
      };
      const path = `/v2/users/${ready.id}/otp_sms`;
      call = async () => {
        if (!c) {
          const r = await rest(url, ready.otp ? "DELETE" : "POST", path, {
            token,
            body: ready.otp ? undefined : {},
          });
          if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
          return Number(r.body.details.sequence);
        }
        const r = ready.otp
          ? await c.users.removeOTPSMS({ userId: ready.id })
          : await c.users.addOTPSMS({ userId: ready.id });
        return Number(r.details?.sequence);
      };
      known.splice(known.indexOf(ready), 1);
      writes.push(w);
      try {
        const sequence = await call();
        assert.ok(sequence > ready.sequence, w.what);
        w.expect = [{ type: "user", id: ready.id, from: sequence, types: [type] }];
        w.acknowledged = true;
        known.push({ id: ready.id, sequence, otp: !ready.otp });
      } catch (err) {
        failed(err, w);
      }
      continue;
    }
    const id = `${name}-${n++}`;
    const body = {
      userId: id,
      username: id,
      profile: { givenName: "Crash", familyName: id },
      email: { email: `${id}@example.com`, isVerified: true },
      phone: { phone: "+41791234567", isVerified: true },
    };
    if (pick < 0.8) {
      w = { what: `user ${id}`, expect: [{ type: "user", id, from: 1, types: human }], acknowledged: false };
      call = async () => {
        if (!c) {
          const r = await rest(url, "POST", "/v2/users/human", { token, body });
          if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
          return Number(r.body.details.sequence);
        }
        const r = await c.users.addHumanUser({
          userId: id,
          username: id,
          profile: body.profile,
          email: { email: body.email.email, verification: { case: "isVerified", value: true } },
          phone: { phone: body.phone.phone, verification: { case: "isVerified", value: true } },
        });
        return Number(r.details?.sequence);
      };
      writes.push(w);
      try {
        assert.equal(await call(), 3, w.what);
        w.acknowledged = true;
        known.push({ id, sequence: 3, otp: false });
      } catch (err) {
        failed(err, w);
      }
      continue;
    }
    const orgId = `org-${id}`;
    w = {
      what: `org ${orgId} with admin ${id}`,
      expect: [
        { type: "org", id: orgId, from: 1, types: ["org.added", "org.member.added"] },
        { type: "user", id, from: 1, types: human },
      ],
      acknowledged: false,
    };
    const { userId: _u, ...admin } = body;
    call = async () => {
      const req = { name: orgId, orgId, admins: [{ human: { ...admin, userId: id }, roles: ["ORG_OWNER"] }] };
      if (!c) {
        const r = await rest(url, "POST", "/v2/organizations", { token, body: req });
        if (r.status !== 201) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
        return Number(r.body.details.sequence);
      }
      const r = await c.orgs.addOrganization({
        name: orgId,
        orgId,
        admins: [
          {
            userType: {
              case: "human",
              value: {
                userId: id,
                username: id,
                profile: admin.profile,
                email: { email: admin.email.email, verification: { case: "isVerified", value: true } },
                phone: { phone: admin.phone.phone, verification: { case: "isVerified", value: true } },
              },
            },
            roles: ["ORG_OWNER"],
          },
        ],
      });
      return Number(r.details?.sequence);
    };
    writes.push(w);
    try {
      assert.equal(await call(), 2, w.what);
      w.acknowledged = true;
      known.push({ id, sequence: 3, otp: false });
    } catch (err) {
      failed(err, w);
    }
  }
}

const urlOf = (config: DatabaseConfig) => (config.kind === "sqlite" ? `sqlite:${config.path}` : config.url);

let crashes = 0;
let acknowledged = 0;
let unanswered = 0;

for (const kind of databaseKinds) {
  describe(`kill -9 under load (${kind})`, () => {
    after(() => killAll());

    it(`keeps every acknowledged write and no half of any write, over ${rounds} crashes (seed ${seed})`, async () => {
      const random = prng(seed);
      const database = await freshDatabase(kind);
      const dir = mkdtempSync(join(tmpdir(), "latchkey-crash-"));
      const env = {
        LATCHKEY_DATABASE_URL: urlOf(database.config),
        LATCHKEY_ADMIN_PAT_PATH: join(dir, "admin.pat"),
        LATCHKEY_WRITES_PER_MINUTE: "0",
      };
      const writes: Write[] = [];
      const unexpected: string[] = [];
      try {
        for (let round = 0; round < rounds; round++) {
          const server = await spawnLatchkey(env);
          const token = readFileSync(env.LATCHKEY_ADMIN_PAT_PATH, "utf8").trim();
          const stop = { now: false };
          const load = protocolsWithRest.map((p, i) =>
            writer(
              server.url,
              token,
              p,
              `r${round}w${i}`,
              prng(seed + round * 10 + i),
              writes,
              stop,
              unexpected,
            ),
          );
          // Let the load run a while, then kill the process in the middle of it.
          await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 1200)));
          stop.now = true;
          server.child.kill("SIGKILL");
          await server.exited();
          await Promise.all(load);
          crashes++;
          assert.deepEqual(unexpected, [], "writes failed while the server was running");
          await check(database.config, writes);
        }
        // The last word is the operator's command, on the database at rest.
        const child = spawn(process.execPath, [latchkeyBin, "verify"], {
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d) => {
          out += d;
        });
        const [code] = await once(child, "exit");
        assert.equal(code, 0, out);
        const acks = writes.filter((w) => w.acknowledged).length;
        acknowledged += acks;
        unanswered += writes.length - acks;
        assert.ok(acks > rounds * 4, `too little load to mean anything: ${acks} acknowledged writes`);
        console.log(
          `crash (${kind}): ${rounds} kill -9 survived, ${writes.length} writes checked (${acks} acknowledged, ${writes.length - acks} unanswered), seed ${seed}`,
        );
      } finally {
        killAll();
        await database.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

after(() => {
  if (crashes > 0)
    console.log(
      `crash totals: ${crashes} kill -9, ${acknowledged} acknowledged writes kept, ${unanswered} unanswered writes whole or absent`,
    );
});

async function check(config: DatabaseConfig, writes: readonly Write[]) {
  const store = await openStore(config, { migrate: false });
  try {
    const instance = await store.getInstance();
    assert.ok(instance, "the instance survived");
    const cache = new Map<string, RecordedEvent[]>();
    const events = async (type: "user" | "org", id: string) => {
      const key = `${type}/${id}`;
      let e = cache.get(key);
      if (!e) {
        e = await store.loadEvents(instance.id, { type, id }, 0);
        cache.set(key, e);
      }
      return e;
    };
    for (const w of writes) {
      const present: boolean[] = [];
      for (const x of w.expect) {
        const got = (await events(x.type, x.id)).filter(
          (e) => e.sequence >= x.from && e.sequence < x.from + x.types.length,
        );
        const whole =
          got.length === x.types.length &&
          got.every((e, i) => e.type === x.types[i] && e.sequence === x.from + i);
        if (!whole && got.length > 0 && x.types.length > 1)
          assert.fail(
            `half of ${w.what} is in the log: ${got.map((e) => `${e.sequence}:${e.type}`).join(", ")}`,
          );
        present.push(whole);
      }
      if (w.acknowledged) assert.ok(present.every(Boolean), `acknowledged but missing: ${w.what}`);
      else assert.ok(present.every(Boolean) || present.every((p) => !p), `partly applied: ${w.what}`);
    }
    const report = await verify(store);
    assert.deepEqual(report.differences, [], "the read models differ from the fold of the log");
  } finally {
    await store.close();
  }
}
