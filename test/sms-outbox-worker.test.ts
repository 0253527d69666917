// The SMS outbox worker against a real store of each kind, with a sender the test controls: what
// it claims, and when, as the messages' writers would notice it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { OutboxChange, SmsMessage, Store } from "../src/app/ports.ts";
import { startOutboxWorker } from "../src/notify/outbox-worker.ts";
import { openStore } from "../src/store/open.ts";
import { eventually } from "./support/assertions.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";

const quiet = { info() {}, warn() {}, error() {} };

// A message written as an append does it, due at `dueAt`.
function enqueueAt(store: Store, instanceId: string, to: string, dueAt: Date): Promise<unknown> {
  const change: OutboxChange = {
    kind: "enqueue",
    message: {
      id: randomUUID(),
      userId: "u1",
      type: "security_notice",
      to,
      language: "en",
      sealedText: `plain:hello ${to}`,
      expiresAt: new Date(dueAt.getTime() + 3600_000),
    },
    quotas: [],
  };
  return store.append({
    instanceId,
    creator: "test",
    createdAt: dueAt,
    writes: [],
    readModel: [],
    outbox: [change],
  });
}

for (const kind of databaseKinds) {
  describe(`the SMS outbox worker on ${kind}`, () => {
    it("sends a message that became visible after later ones were claimed, while another is still on its way", async () => {
      const db = await freshDatabase(kind);
      const store = await openStore(db.config);
      const instanceId = randomUUID();
      const sent: string[] = [];
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const worker = startOutboxWorker(
        {
          store,
          instanceId,
          sender: {
            name: "test",
            async send(m: SmsMessage) {
              sent.push(m.to);
              if (m.to === "+41790000001") await held;
              return { providerMessageId: null };
            },
          },
          record: async (m) => {
            await store.append({
              instanceId,
              creator: "test",
              createdAt: new Date(),
              writes: [],
              readModel: [],
              outbox: [
                {
                  kind: "settle",
                  id: m.id,
                  claim: m.claim,
                  status: "sent",
                  note: "sent",
                  providerMessageId: null,
                },
              ],
            });
          },
          clock: { now: () => new Date() },
          log: quiet,
        },
        { maxAttempts: 3, retryBaseMs: 10, timeoutMs: 5000, outboxKey: null, pollMs: 200, concurrency: 4 },
      );
      try {
        await enqueueAt(store, instanceId, "+41790000001", new Date());
        worker.wake();
        await eventually(() => sent.includes("+41790000001"), "the first message on its way");
        // Written as if its append had taken its time a minute ago and committed only now.
        await enqueueAt(store, instanceId, "+41790000002", new Date(Date.now() - 60_000));
        worker.wake();
        await eventually(() => sent.includes("+41790000002"), "the older message sent", 5000);
        assert.deepEqual(sent, ["+41790000001", "+41790000002"]);
      } finally {
        release();
        await worker.stop();
        await store.close();
        await db.drop();
      }
    });
  });
}
