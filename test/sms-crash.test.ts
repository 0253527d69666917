// The outbox across a hard crash: Latchkey runs as its own process and is killed with SIGKILL
// at the worst moments, then started again on the same database.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Store } from "../src/app/ports.ts";
import { openStore } from "../src/store/open.ts";
import { eventually } from "./support/assertions.ts";
import { clients } from "./support/clients.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { killAll, type ServerProcess, spawnLatchkey } from "./support/process.ts";
import { startSmsReceiver } from "./support/sms-receiver.ts";

const sendCode = { case: "sendCode" as const, value: {} };

async function crash(p: ServerProcess): Promise<void> {
  p.child.kill("SIGKILL");
  assert.equal(await p.exited(), null, "killed, not exited");
}

for (const db of databaseKinds) {
  describe(`the SMS outbox across crashes (${db})`, () => {
    after(() => killAll());

    it("never sends a message twice after a crash between sending and bookkeeping, and sends what was left", async () => {
      const database = await freshDatabase(db);
      const dir = mkdtempSync(join(tmpdir(), "latchkey-crash-"));
      const receiver = await startSmsReceiver();
      let store: Store | null = null;
      try {
        const config = database.config;
        const env = {
          LATCHKEY_DATABASE_URL: config.kind === "sqlite" ? `sqlite:${config.path}` : config.url,
          LATCHKEY_ADMIN_PAT_PATH: join(dir, "admin.pat"),
          LATCHKEY_SMS_PROVIDER: "webhook",
          LATCHKEY_SMS_WEBHOOK_URL: `${receiver.url}/sms`,
          LATCHKEY_SMS_WEBHOOK_SECRET: "crash-test-secret-0123",
          LATCHKEY_SMS_TIMEOUT_MS: "60000",
        };
        const to = (i: number) => JSON.parse(receiver.requests[i]?.body ?? "{}").to as string;
        const idOf = (i: number) => JSON.parse(receiver.requests[i]?.body ?? "{}").id as string;

        // 1. The provider has the message but has not answered when the process dies.
        receiver.respond = (_, n) => (n === 0 ? "hold" : { status: 200, body: "{}" });
        let p = await spawnLatchkey(env);
        const token = readFileSync(env.LATCHKEY_ADMIN_PAT_PATH, "utf8").trim();
        let admin = clients(p.url, token);
        const first = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: first.userId, phone: "+41791230101", verification: sendCode });
        await receiver.received(1);
        await crash(p);

        p = await spawnLatchkey(env);
        admin = clients(p.url, token);
        const second = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: second.userId, phone: "+41791230102", verification: sendCode });
        await receiver.received(2);
        assert.equal(to(1), "+41791230102", "the message cut off by the crash is not sent again");
        store = await openStore(config);
        const instanceId = (await store.getInstance())!.id;
        const [cutOff] = await store.outboxOf(instanceId, first.userId);
        assert.equal(cutOff?.id, idOf(0));
        assert.equal(cutOff?.status, "sending", "its attempt is on record, its outcome unknown");
        assert.equal(cutOff?.attempts, 1);

        // 2. A message whose first attempt failed is waiting for its retry when the process dies:
        // it is sent by the next process, once.
        let crashed = false;
        receiver.respond = (req) =>
          JSON.parse(req.body).to === "+41791230103" && !crashed
            ? { status: 503, headers: { "retry-after": "5" } }
            : { status: 200, body: "{}" };
        const third = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: third.userId, phone: "+41791230103", verification: sendCode });
        // A new message is "pending" too, before its first attempt: wait for the attempt made.
        await eventually(async () => {
          const [m] = await store!.outboxOf(instanceId, third.userId);
          return m?.status === "pending" && m.attempts === 1;
        }, "the retry to be scheduled");
        await crash(p);
        crashed = true;
        const failedAttempts = receiver.requests.length;

        p = await spawnLatchkey(env);
        const sent = await eventually(
          async () =>
            (await store!.loadEvents(instanceId, { type: "user", id: third.userId }, 0)).find(
              (e) => e.type === "user.human.phone.code.sent",
            ),
          "the message left over to be sent",
        );
        const forThird = receiver.requests.filter((r) => JSON.parse(r.body).to === "+41791230103");
        assert.equal(receiver.requests.length, failedAttempts + 1, "sent once after the restart");
        assert.equal(new Set(forThird.map((r) => JSON.parse(r.body).id)).size, 1, "as the same message");
        assert.equal((sent.payload as { messageId: string }).messageId, JSON.parse(forThird[0]!.body).id);
        assert.equal(receiver.requests.filter((r) => JSON.parse(r.body).id === idOf(0)).length, 1);

        p.child.kill("SIGTERM");
        assert.equal(await p.exited(), 0, "a worker does not keep a stopping server alive");
      } finally {
        await store?.close();
        await receiver.close();
        killAll();
        await database.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
