// SMS as a user receives them: through real HTTP servers on loopback standing in for Twilio and
// for an operator's webhook, with the outbox, its worker and the sending limits on each database.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../src/api/retry-info.ts";
import type { RecordedEvent } from "../src/domain/events.ts";
import { twilioSender } from "../src/notify/twilio-sender.ts";
import { eventually, expectCode } from "./support/assertions.ts";
import { type Clients, clients, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { type ReceivedRequest, type SmsReceiver, startSmsReceiver } from "./support/sms-receiver.ts";

const secret = "webhook-secret-0123456789";
const sid = "AC0123456789abcdef0123456789abcdef";

const webhookEnv = (r: SmsReceiver, more: Record<string, string> = {}) => ({
  LATCHKEY_SMS_PROVIDER: "webhook",
  LATCHKEY_SMS_WEBHOOK_URL: `${r.url}/hooks/sms`,
  LATCHKEY_SMS_WEBHOOK_SECRET: secret,
  LATCHKEY_SMS_RETRY_BASE_MS: "20",
  ...more,
});

const twilioEnv = (r: SmsReceiver, more: Record<string, string> = {}) => ({
  LATCHKEY_SMS_PROVIDER: "twilio",
  LATCHKEY_SMS_TWILIO_ACCOUNT_SID: sid,
  LATCHKEY_SMS_TWILIO_AUTH_TOKEN: "twilio-auth-token",
  LATCHKEY_SMS_TWILIO_FROM: "+15005550006",
  LATCHKEY_SMS_TWILIO_BASE_URL: r.url,
  LATCHKEY_SMS_RETRY_BASE_MS: "20",
  ...more,
});

const json = (r: ReceivedRequest | undefined) => JSON.parse(r?.body ?? "null");
const form = (r: ReceivedRequest | undefined) => Object.fromEntries(new URLSearchParams(r?.body ?? ""));

function eventsOf(server: TestServer, userId: string): Promise<RecordedEvent[]> {
  return server.running.app.deps.store.loadEvents(
    server.running.app.instanceId,
    { type: "user", id: userId },
    0,
  );
}

const outboxOf = (server: TestServer, userId: string) =>
  server.running.app.deps.store.outboxOf(server.running.app.instanceId, userId);

// The first event of a type, once the worker has recorded it.
const recorded = (server: TestServer, userId: string, type: string) =>
  eventually(
    async () => (await eventsOf(server, userId)).find((e) => e.type === type),
    `${type} on ${userId}`,
  );

const logLines = (server: TestServer, msg: string) =>
  server.logs.map((l) => JSON.parse(l)).filter((l: { msg: string }) => l.msg === msg);

async function withServer(
  db: "sqlite" | "postgres",
  env: (r: SmsReceiver) => Record<string, string>,
  test: (s: { server: TestServer; receiver: SmsReceiver; admin: Clients }) => Promise<void>,
): Promise<void> {
  const receiver = await startSmsReceiver();
  const server = await startTestServer(db, { env: env(receiver) });
  try {
    await test({ server, receiver, admin: clients(server.url, server.adminToken) });
  } finally {
    await receiver.close();
    await server.stop();
  }
}

const sendCode = { case: "sendCode" as const, value: {} };
const returnCode = { case: "returnCode" as const, value: {} };

for (const db of databaseKinds) {
  describe(`SMS delivery (${db})`, () => {
    it("POSTs a signed JSON message to the webhook, in the user's language, and records it as sent", async () => {
      await withServer(db, webhookEnv, async ({ server, receiver, admin }) => {
        const user = await humanUser(admin, { phone: "", language: "de-CH" });
        await admin.users.setPhone({
          userId: user.userId,
          phone: "+41 79 111 22 33",
          verification: sendCode,
        });
        const [req] = await receiver.received(1);
        const started = Math.floor(Date.now() / 1000);
        assert.equal(req?.method, "POST");
        assert.equal(req?.path, "/hooks/sms");
        assert.equal(req?.headers["content-type"], "application/json");
        const body = json(req);
        assert.deepEqual(Object.keys(body).sort(), ["expiresAt", "id", "language", "text", "to", "type"]);
        assert.equal(body.to, "+41791112233");
        assert.equal(body.type, "phone_verification");
        assert.equal(body.language, "de");
        assert.ok(Date.parse(body.expiresAt) > Date.now());
        const code = /^Ihr Bestätigungscode lautet ([A-Z0-9]{6})\. Er ist 10 Minuten gültig\.$/.exec(
          body.text,
        )?.[1];
        assert.ok(code, body.text);
        assert.equal(req?.headers["idempotency-key"], body.id);

        // Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
        const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req?.headers["latchkey-signature"]));
        assert.ok(sig, String(req?.headers["latchkey-signature"]));
        const expected = createHmac("sha256", secret).update(`${sig[1]}.${req?.body}`).digest("hex");
        assert.equal(sig[2], expected, "the signature verifies with the shared secret");
        assert.ok(Math.abs(Number(sig[1]) - started) < 300, "the signed time is now");
        const tampered = createHmac("sha256", secret).update(`${sig[1]}.${req?.body} `).digest("hex");
        assert.notEqual(sig[2], tampered);

        const sent = await recorded(server, user.userId, "user.human.phone.code.sent");
        assert.deepEqual(sent.payload, {
          messageId: body.id,
          messageType: "phone_verification",
          provider: "webhook",
          providerMessageId: null,
        });
        assert.equal(sent.creator, "NOTIFICATION");
        const [row] = await outboxOf(server, user.userId);
        assert.equal(row?.status, "sent");
        assert.equal(row?.hasText, false, "the code is not kept once sent");
        // The code that arrived is the one that verifies.
        await admin.users.verifyPhone({ userId: user.userId, verificationCode: code });
        await server.smsIdle();
        assert.equal(receiver.requests.length, 1);
      });
    });

    it("keeps at most LATCHKEY_SMS_CONCURRENCY provider calls open, and sends the rest after", async () => {
      const env = (r: SmsReceiver) => webhookEnv(r, { LATCHKEY_SMS_CONCURRENCY: "2" });
      await withServer(db, env, async ({ server, receiver, admin }) => {
        receiver.respond = () => "hold";
        const users = await Promise.all([0, 1, 2, 3, 4].map(() => humanUser(admin, { phone: "" })));
        const sendTo = (i: number) =>
          admin.users.setPhone({
            userId: users[i]!.userId,
            phone: `+41 79 111 22 3${i}`,
            verification: sendCode,
          });
        // Every call is held at the provider: two go out, the other three wait in the outbox.
        for (const i of [0, 1, 2, 3, 4]) await sendTo(i);
        await receiver.received(2);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(receiver.requests.length, 2, "two calls open at once, not five");
        receiver.release();
        await receiver.received(4);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(receiver.requests.length, 4, "the two answered made room for two more");
        receiver.release();
        await receiver.received(5);
        receiver.release();
        for (const u of users) await recorded(server, u.userId, "user.human.phone.code.sent");
      });
    });

    it("sends the next messages while a provider call hangs", async () => {
      const env = (r: SmsReceiver) => webhookEnv(r, { LATCHKEY_SMS_TIMEOUT_MS: "30000" });
      await withServer(db, env, async ({ server, receiver, admin }) => {
        receiver.respond = (_req, n) => (n === 0 ? "hold" : { status: 200, body: "{}" });
        const [stuck, next] = await Promise.all([0, 1].map(() => humanUser(admin, { phone: "" })));
        await admin.users.setPhone({
          userId: stuck!.userId,
          phone: "+41 79 111 22 40",
          verification: sendCode,
        });
        await receiver.received(1);
        await admin.users.setPhone({
          userId: next!.userId,
          phone: "+41 79 111 22 41",
          verification: sendCode,
        });
        await receiver.received(2, 10_000);
        await recorded(server, next!.userId, "user.human.phone.code.sent");
        const [stuckRow] = await outboxOf(server, stuck!.userId);
        assert.equal(stuckRow?.status, "sending", "the first call is still open");
        receiver.release();
        await recorded(server, stuck!.userId, "user.human.phone.code.sent");
      });
    });

    it("sends through Twilio's Messages API with basic auth and a form body", async () => {
      await withServer(db, twilioEnv, async ({ server, receiver, admin }) => {
        receiver.respond = () => ({
          status: 201,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sid: "SM00000000000000000000000000000001", status: "queued" }),
        });
        const user = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: user.userId, phone: "+41791112244", verification: sendCode });
        const [req] = await receiver.received(1);
        assert.equal(req?.method, "POST");
        assert.equal(req?.path, `/2010-04-01/Accounts/${sid}/Messages.json`);
        assert.equal(
          req?.headers.authorization,
          `Basic ${Buffer.from(`${sid}:twilio-auth-token`).toString("base64")}`,
        );
        assert.equal(req?.headers["content-type"], "application/x-www-form-urlencoded");
        const params = form(req);
        assert.deepEqual(Object.keys(params), ["To", "From", "Body"]);
        assert.equal(params.To, "+41791112244");
        assert.equal(params.From, "+15005550006");
        assert.match(
          params.Body ?? "",
          /^Your verification code is [A-Z0-9]{6}\. It expires in 10 minutes\.$/,
        );
        const sent = await recorded(server, user.userId, "user.human.phone.code.sent");
        assert.equal((sent.payload as { provider: string }).provider, "twilio");
        assert.equal(
          (sent.payload as { providerMessageId: string }).providerMessageId,
          "SM00000000000000000000000000000001",
        );
        assert.equal(
          (await outboxOf(server, user.userId))[0]?.providerMessageId,
          sent.payload?.providerMessageId,
        );
      });
    });

    it("retries 5xx and 429 with the same message and gives up at once on a 400, counting both", async () => {
      await withServer(db, twilioEnv, async ({ server, receiver, admin }) => {
        const failing = await humanUser(admin, { phone: "" });
        const refused = await humanUser(admin, { phone: "" });
        receiver.respond = (req, n) => {
          if (form(req).To === "+41791112266")
            return { status: 400, body: JSON.stringify({ code: 21211, message: "invalid To" }) };
          if (n === 0) return { status: 500, body: "oops" };
          if (n === 1) return { status: 429, headers: { "retry-after": "0" }, body: "{}" };
          return { status: 201, body: JSON.stringify({ sid: "SM2" }) };
        };
        await admin.users.setPhone({ userId: failing.userId, phone: "+41791112255", verification: sendCode });
        await recorded(server, failing.userId, "user.human.phone.code.sent");
        const attempts = receiver.requests.slice(0, 3);
        assert.equal(receiver.requests.length, 3);
        assert.ok(
          attempts.every((r) => r.body === attempts[0]?.body),
          "every attempt sends the same message",
        );
        const [row] = await outboxOf(server, failing.userId);
        assert.equal(row?.status, "sent");
        assert.equal(row?.attempts, 3);

        await admin.users.setPhone({ userId: refused.userId, phone: "+41791112266", verification: sendCode });
        const failed = await recorded(server, refused.userId, "user.human.sms.failed");
        assert.deepEqual(failed.payload, {
          messageId: (await outboxOf(server, refused.userId))[0]?.id,
          messageType: "phone_verification",
          reason: "rejected",
          detail: "HTTP 400, Twilio error 21211",
        });
        await server.smsIdle();
        assert.equal(receiver.requests.filter((r) => form(r).To === "+41791112266").length, 1, "no retry");
        const [gone] = await outboxOf(server, refused.userId);
        assert.equal(gone?.status, "failed");
        assert.equal(gone?.attempts, 1);
        assert.equal(gone?.hasText, false);
        assert.equal(
          (await eventsOf(server, refused.userId)).some((e) => e.type === "user.human.phone.code.sent"),
          false,
        );

        // The log carries the running counts (until /metrics has them).
        assert.equal(logLines(server, "sms attempt failed; will retry").length, 2);
        assert.deepEqual(logLines(server, "sms sent").at(-1).counts, {
          sent: 1,
          retried: 2,
          failed: 0,
          expired: 0,
        });
        assert.deepEqual(logLines(server, "sms failed").at(-1).counts, {
          sent: 1,
          retried: 2,
          failed: 1,
          expired: 0,
        });
        assert.deepEqual(server.running.outbox.counters(), { sent: 1, retried: 2, failed: 1, expired: 0 });
        // No log line carries a code or a message text.
        assert.ok(!server.logs.some((l) => /verification code is/.test(l)));
      });
    });

    it("sends nothing for returnCode", async () => {
      await withServer(db, webhookEnv, async ({ server, receiver, admin }) => {
        const quiet = await humanUser(admin, { phone: "" });
        const set = await admin.users.setPhone({
          userId: quiet.userId,
          phone: "+41791113301",
          verification: returnCode,
        });
        const resent = await admin.users.resendPhoneCode({ userId: quiet.userId, verification: returnCode });
        assert.match(set.verificationCode ?? "", /^[A-Z0-9]{6}$/);
        assert.match(resent.verificationCode ?? "", /^[A-Z0-9]{6}$/);
        // A message sent afterwards arrives alone: nothing was queued before it.
        const loud = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: loud.userId, phone: "+41791113302", verification: sendCode });
        await receiver.received(1);
        await server.smsIdle();
        assert.deepEqual(
          receiver.requests.map((r) => json(r).to),
          ["+41791113302"],
        );
        assert.deepEqual(await outboxOf(server, quiet.userId), []);
      });
    });

    it("tells the enrolled number when OTP SMS is removed, in the user's language", async () => {
      await withServer(db, webhookEnv, async ({ server, receiver, admin }) => {
        const german = await humanUser(admin, { phone: "+41791114401", language: "de" });
        await admin.users.addOTPSMS({ userId: german.userId });
        await admin.users.removeOTPSMS({ userId: german.userId });
        const [notice] = await receiver.received(1);
        assert.equal(json(notice).to, "+41791114401");
        assert.equal(json(notice).type, "security_notice");
        assert.equal(json(notice).language, "de");
        assert.match(json(notice).text, /^Sicherheitshinweis: Einmalpasswörter per SMS/);
        const sent = await recorded(server, german.userId, "user.human.sms.sent");
        assert.equal((sent.payload as { messageType: string }).messageType, "security_notice");

        // Removing the phone, or moving to another number, ends OTP SMS: the old number hears.
        const removing = await humanUser(admin, { phone: "+41791114402" });
        await admin.users.addOTPSMS({ userId: removing.userId });
        await admin.users.removePhone({ userId: removing.userId });
        const moving = await humanUser(admin, { phone: "+41791114403", language: "fr" });
        await admin.users.addOTPSMS({ userId: moving.userId });
        await admin.users.setPhone({
          userId: moving.userId,
          phone: "+41791114404",
          verification: returnCode,
        });
        // Without OTP SMS there is nothing to announce.
        const plain = await humanUser(admin, { phone: "+41791114405" });
        await admin.users.removePhone({ userId: plain.userId });
        await receiver.received(3);
        await server.smsIdle();
        assert.deepEqual(receiver.requests.map((r) => [json(r).to, json(r).type, json(r).language]).sort(), [
          ["+41791114401", "security_notice", "de"],
          ["+41791114402", "security_notice", "en"],
          ["+41791114403", "security_notice", "en"],
        ]);
        const english = receiver.requests.find((r) => json(r).to === "+41791114402");
        assert.match(json(english).text, /^Security notice: one-time passwords by SMS/);
      });
    });

    it("sends no removal notice when turned off", async () => {
      await withServer(
        db,
        (r) => webhookEnv(r, { LATCHKEY_SMS_REMOVAL_NOTICE: "false" }),
        async ({ server, receiver, admin }) => {
          const user = await humanUser(admin, { phone: "+41791115501" });
          await admin.users.addOTPSMS({ userId: user.userId });
          await admin.users.removeOTPSMS({ userId: user.userId });
          const other = await humanUser(admin, { phone: "" });
          await admin.users.setPhone({ userId: other.userId, phone: "+41791115502", verification: sendCode });
          await receiver.received(1);
          await server.smsIdle();
          assert.deepEqual(
            receiver.requests.map((r) => json(r).type),
            ["phone_verification"],
          );
        },
      );
    });

    it("answers ResourceExhausted (REST 429) with a retry hint over a sending limit, and sends and writes nothing", async () => {
      const limits = {
        LATCHKEY_SMS_LIMIT_PER_USER: "2",
        LATCHKEY_SMS_LIMIT_PER_NUMBER: "3",
        LATCHKEY_SMS_LIMIT_PER_PREFIX: "4",
        LATCHKEY_SMS_LIMIT_PREFIX_DIGITS: "6",
      };
      await withServer(
        db,
        (r) => webhookEnv(r, limits),
        async ({ server, receiver, admin }) => {
          const first = await humanUser(admin, { phone: "" });
          await admin.users.setPhone({ userId: first.userId, phone: "+41791110001", verification: sendCode });
          await admin.users.resendPhoneCode({ userId: first.userId, verification: sendCode });
          await server.smsIdle();
          const before = await eventsOf(server, first.userId);

          // Per user, over gRPC: the code, our id and a google.rpc.RetryInfo.
          const err = await admin.users
            .resendPhoneCode({ userId: first.userId, verification: sendCode })
            .then(() => assert.fail("the third code within the hour was accepted"), ConnectError.from);
          assert.equal(err.code, Code.ResourceExhausted);
          assert.match(err.rawMessage, /\(LK-SMS-LIMIT-USER\)$/);
          const [retry] = err.findDetails(RetryInfoSchema) as { retryDelay?: { seconds: bigint } }[];
          const delay = Number(retry?.retryDelay?.seconds);
          assert.ok(delay > 3500 && delay <= 3600, `retry in ${delay}s`);

          // Over REST: 429 with Retry-After and the same detail in the body.
          const res = await fetch(`${server.url}/v2/users/${first.userId}/phone/resend`, {
            method: "POST",
            headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
            body: JSON.stringify({ sendCode: {} }),
          });
          assert.equal(res.status, 429);
          const retryAfter = Number(res.headers.get("retry-after"));
          assert.ok(retryAfter > 3500 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
          const body = (await res.json()) as {
            code: number;
            details: { "@type": string; retryDelay?: string }[];
          };
          assert.equal(body.code, 8);
          assert.deepEqual(
            body.details.map((d) => d["@type"]),
            ["type.googleapis.com/zitadel.v1.ErrorDetail", "type.googleapis.com/google.rpc.RetryInfo"],
          );
          assert.equal(body.details[1]?.retryDelay, `${retryAfter}s`);
          assert.deepEqual(await eventsOf(server, first.userId), before, "nothing is written");
          // Handing the code back sends nothing, so it is not limited.
          await admin.users.resendPhoneCode({ userId: first.userId, verification: returnCode });

          // Per phone number, whoever the user.
          const second = await humanUser(admin, { phone: "" });
          await admin.users.setPhone({
            userId: second.userId,
            phone: "+41791110001",
            verification: sendCode,
          });
          const third = await humanUser(admin, { phone: "" });
          await expectCode(
            admin.users.setPhone({ userId: third.userId, phone: "+41 79 111 00 01", verification: sendCode }),
            Code.ResourceExhausted,
            "LK-SMS-LIMIT-NUMBER",
          );
          // A new user with that number is not created at all.
          const refusedNew = await rest(server.url, "POST", "/v2/users/human", {
            token: server.adminToken,
            body: {
              username: "limited-newcomer",
              profile: { givenName: "New", familyName: "Comer" },
              email: { email: "newcomer@example.com", isVerified: true },
              phone: { phone: "+41791110001", sendCode: {} },
            },
          });
          assert.equal(refusedNew.status, 429);
          assert.equal(refusedNew.body.details[0].id, "LK-SMS-LIMIT-NUMBER");
          const lookup = await rest(server.url, "POST", "/v2/users/human", {
            token: server.adminToken,
            body: {
              username: "limited-newcomer",
              profile: { givenName: "New", familyName: "Comer" },
              email: { email: "newcomer@example.com", isVerified: true },
            },
          });
          assert.equal(lookup.status, 200, "the username was not taken by the refused request");

          // Per prefix: +417911 has had 3; one more fits, the next is refused; another prefix is not.
          const fourth = await humanUser(admin, { phone: "" });
          await admin.users.setPhone({
            userId: fourth.userId,
            phone: "+41791119999",
            verification: sendCode,
          });
          const fifth = await humanUser(admin, { phone: "" });
          await expectCode(
            admin.users.setPhone({ userId: fifth.userId, phone: "+41791118888", verification: sendCode }),
            Code.ResourceExhausted,
            "LK-SMS-LIMIT-PREFIX",
          );
          await admin.users.setPhone({ userId: fifth.userId, phone: "+41781110000", verification: sendCode });

          await receiver.received(5);
          await server.smsIdle();
          assert.deepEqual(receiver.requests.map((r) => json(r).to).sort(), [
            "+41781110000",
            "+41791110001",
            "+41791110001",
            "+41791110001",
            "+41791119999",
          ]);
          assert.deepEqual(await outboxOf(server, third.userId), []);
        },
      );
    });

    it("skips a code that expired while its delivery was failing", async () => {
      const receiver = await startSmsReceiver();
      let offsetMs = 0;
      const server = await startTestServer(db, {
        env: webhookEnv(receiver, { LATCHKEY_SMS_RETRY_BASE_MS: "60000" }),
        clock: { now: () => new Date(Date.now() + offsetMs) },
      });
      try {
        const admin = clients(server.url, server.adminToken);
        receiver.respond = () => ({ status: 503 });
        const user = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: user.userId, phone: "+41791116601", verification: sendCode });
        await receiver.received(1);
        await eventually(
          async () => (await outboxOf(server, user.userId))[0]?.status === "pending",
          "a retry",
        );
        // Later than the code's ten minutes: the retry finds it expired and does not send it.
        offsetMs = 15 * 60_000;
        await server.smsIdle();
        const failed = await recorded(server, user.userId, "user.human.sms.failed");
        assert.equal((failed.payload as { reason: string }).reason, "expired");
        assert.equal(receiver.requests.length, 1);
        assert.equal((await outboxOf(server, user.userId))[0]?.status, "expired");
        assert.equal(server.running.outbox.counters().expired, 1);
      } finally {
        await receiver.close();
        await server.stop();
      }
    });

    it("never repeats an attempt cut off before its outcome: another node settles it as unknown", async () => {
      const receiver = await startSmsReceiver();
      receiver.respond = () => "hold";
      const env = webhookEnv(receiver, { LATCHKEY_SMS_TIMEOUT_MS: "60000" });
      const nodeA = await startTestServer(db, { env });
      let nodeB: TestServer | null = null;
      try {
        const admin = clients(nodeA.url, nodeA.adminToken);
        const user = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: user.userId, phone: "+41791117701", verification: sendCode });
        const [held] = await receiver.received(1);
        assert.equal(
          (await outboxOf(nodeA, user.userId))[0]?.status,
          "sending",
          "the attempt is recorded first",
        );

        // Node B shares the database and lives past the attempt's deadline (twice the timeout
        // and then some): for it, node A died mid-attempt.
        nodeB = await startTestServer(db, {
          env,
          reuse: { database: nodeA.database, dir: nodeA.dir },
          clock: { now: () => new Date(Date.now() + 10 * 60_000) },
        });
        const failed = await recorded(nodeB, user.userId, "user.human.sms.failed");
        assert.equal((failed.payload as { reason: string }).reason, "unknown");
        assert.equal((failed.payload as { messageId: string }).messageId, json(held).id);
        await nodeB.smsIdle();
        assert.equal(receiver.requests.length, 1, "not sent again");

        // Node A's answer arrives after all: its claim is gone, and it records nothing twice.
        receiver.release({ status: 200, body: "{}" });
        await eventually(() => logLines(nodeA, "sms outcome not recorded").length === 1, "the lost claim");
        const types = (await eventsOf(nodeA, user.userId)).map((e) => e.type);
        assert.equal(
          types.filter((t) => t.startsWith("user.human.sms") || t.endsWith("code.sent")).length,
          1,
        );
      } finally {
        receiver.release();
        await nodeB?.stop({ keepData: true });
        await receiver.close();
        await nodeA.stop();
      }
    });

    it("keeps the code encrypted in the outbox when a key is set, and does not send what it cannot open", async () => {
      const receiver = await startSmsReceiver();
      receiver.respond = () => ({ status: 503 });
      const key = "11".repeat(32);
      const env = webhookEnv(receiver, { LATCHKEY_SMS_OUTBOX_KEY: key, LATCHKEY_SMS_RETRY_BASE_MS: "60000" });
      let server = await startTestServer(db, { env });
      try {
        const admin = clients(server.url, server.adminToken);
        const user = await humanUser(admin, { phone: "" });
        await admin.users.setPhone({ userId: user.userId, phone: "+41791118801", verification: sendCode });
        const [first] = await receiver.received(1);
        const code = /([A-Z0-9]{6})\./.exec(json(first).text)?.[1] ?? "";
        await eventually(
          async () => (await outboxOf(server, user.userId))[0]?.status === "pending",
          "a retry",
        );
        const stored = await rawOutboxText(server, json(first).id);
        assert.match(stored ?? "", /^v1:/);
        assert.ok(!stored?.includes(code), "the code is not readable in the database");

        // Restarted with another key, later: the text does not open, and nothing is sent.
        await server.stop({ keepData: true });
        server = await startTestServer(db, {
          env: { ...env, LATCHKEY_SMS_OUTBOX_KEY: "22".repeat(32) },
          reuse: { database: server.database, dir: server.dir },
          clock: { now: () => new Date(Date.now() + 5 * 60_000) },
        });
        const failed = await recorded(server, user.userId, "user.human.sms.failed");
        assert.equal((failed.payload as { reason: string }).reason, "unreadable");
        assert.equal(receiver.requests.length, 1);
        assert.equal(await rawOutboxText(server, json(first).id), null, "the text is gone once settled");
      } finally {
        await receiver.close();
        await server.stop();
      }
    });
  });
}

// The outbox's stored text, read past the port as someone with database access would.
async function rawOutboxText(server: TestServer, id: string): Promise<string | null | undefined> {
  const config = server.database.config;
  if (config.kind === "sqlite") {
    const { default: Database } = await import("better-sqlite3");
    const raw = new Database(config.path, { readonly: true });
    try {
      const row = raw.prepare("SELECT sealed_text FROM sms_outbox WHERE id = ?").get(id) as
        | { sealed_text: string | null }
        | undefined;
      return row?.sealed_text;
    } finally {
      raw.close();
    }
  }
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT sealed_text FROM sms_outbox WHERE id = $1", [id]);
    return rows[0]?.sealed_text;
  } finally {
    await client.end();
  }
}

describe("the Twilio sender", () => {
  it("names a messaging service instead of a sender number when configured with one", async () => {
    const receiver = await startSmsReceiver();
    try {
      receiver.respond = () => ({ status: 201, body: JSON.stringify({ sid: "SM9" }) });
      const sender = twilioSender({
        accountSid: sid,
        authToken: "t",
        from: "MG0123456789abcdef0123456789abcdef",
        baseUrl: receiver.url,
        timeoutMs: 5000,
      });
      const result = await sender.send({
        id: "m1",
        to: "+41791234567",
        text: "hello",
        type: "security_notice",
        language: "en",
        expiresAt: null,
      });
      assert.equal(result.providerMessageId, "SM9");
      assert.deepEqual(form(receiver.requests[0]), {
        To: "+41791234567",
        MessagingServiceSid: "MG0123456789abcdef0123456789abcdef",
        Body: "hello",
      });
    } finally {
      await receiver.close();
    }
  });
});
