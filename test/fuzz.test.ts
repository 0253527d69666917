import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { servedServices } from "../src/api/services.ts";
import { clients } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { implementedMethods, requests, send } from "./support/fuzz.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// Generated requests against every implemented method over REST, Connect and gRPC-web: none
// may get a server error (5xx, or Internal/Unknown/DataLoss in gRPC-web's trailer), the server
// must keep answering /debug/ready, and a refused request must leave the event log as it was.
// `npm test` runs a fixed seed; `npm run fuzz` runs many more with a new seed, printed so that
// a failure can be replayed with LATCHKEY_FUZZ_SEED.
const runs = Number(process.env.LATCHKEY_FUZZ_RUNS ?? 600);
const seed = Number(
  process.env.LATCHKEY_FUZZ_SEED ?? (process.env.LATCHKEY_FUZZ_RUNS ? Date.now() % 2 ** 31 : 20261127),
);

// The one refusal that writes, on purpose: a wrong verification code counts an attempt.
const writesWhenRefused = new Set(["user.human.phone.verification.failed"]);

const serverFault = (status: number, body: Buffer, grpcStatus: number | null) => {
  // Unimplemented (501) is a deliberate answer for what Latchkey does not serve.
  const unimplemented = status === 501 && /"code":(12|"unimplemented")/.test(body.toString());
  if (status >= 500 && !unimplemented) return `HTTP ${status}`;
  if (grpcStatus === 2 || grpcStatus === 13 || grpcStatus === 15) return `grpc-status ${grpcStatus}`;
  return null;
};

for (const db of databaseKinds) {
  describe(`generated requests (${db})`, () => {
    let server: TestServer;
    let known: string[];
    let tokens: string[];
    before(async () => {
      server = await startTestServer(db);
      const admin = clients(server.url, server.adminToken);
      const org = await newOrg(admin);
      const verified = await humanUser(admin, { orgId: org });
      await admin.users.addOTPSMS({ userId: verified.userId });
      const pending = await humanUser(admin, { orgId: org, verified: false });
      const noRole = await callerWith(admin, null, [], org);
      const owner = await callerWith(admin, { orgId: org }, ["ORG_OWNER"], org);
      const pat = await admin.users.addPersonalAccessToken({ userId: noRole.userId });
      known = [
        org,
        verified.userId,
        pending.userId,
        noRole.userId,
        owner.userId,
        pat.tokenId,
        verified.username,
      ];
      tokens = [server.adminToken, noRole.token, owner.token, "not-a-token", ""];
    });
    after(() => server.stop());

    it(`answers ${runs} generated requests without a server error or a stray write (seed ${seed})`, async () => {
      const { app } = server.running;
      const served = servedServices(app);
      const methods = implementedMethods(served);
      assert.ok(methods.length >= 16, `only ${methods.length} implemented methods found`);
      const log = app.deps.store;
      let position = (await log.readLog(app.instanceId, 0, 1_000_000)).at(-1)?.position ?? 0;
      const seen = new Map<string, number>();
      const outcomes = new Map<string, number>();
      let tried = 0;
      await fc.assert(
        fc.asyncProperty(requests(served, methods, tokens, known), async (r) => {
          const a = await send(server.url, r);
          tried++;
          const label = `${r.transport} ${a.status}${a.grpcStatus === null ? "" : `/${a.grpcStatus}`}`;
          seen.set(r.transport, (seen.get(r.transport) ?? 0) + 1);
          const outcome = a.status < 300 && (a.grpcStatus ?? 0) === 0 ? "accepted" : `refused ${a.status}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          const fault = serverFault(a.status, a.body, a.grpcStatus);
          assert.equal(fault, null, `${label}: ${r.describe}\n${a.body.toString().slice(0, 400)}`);
          const fresh = await log.readLog(app.instanceId, position, 1000);
          position = fresh.at(-1)?.position ?? position;
          const refused = a.status >= 300 || (a.grpcStatus !== null && a.grpcStatus !== 0);
          // The SMS worker records what became of messages earlier writes asked for, as ZITADEL's
          // notification worker does (creator NOTIFICATION): those are not this request's.
          const own = fresh.filter((e) => e.creator !== "NOTIFICATION");
          if (refused)
            assert.deepEqual(
              own.map((e) => e.type).filter((t) => !writesWhenRefused.has(t)),
              [],
              `refused (${label}) but wrote: ${r.describe}`,
            );
        }),
        { seed, numRuns: runs, endOnFailure: true },
      );
      const ready = await fetch(`${server.url}/debug/ready`);
      assert.equal(ready.status, 200);
      console.log(
        `fuzz (${db}): ${tried} requests, seed ${seed}, by transport ${JSON.stringify(Object.fromEntries(seen))}, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`,
      );
    });
  });
}
