import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { writeLimiter } from "../src/api/rate-limit.ts";
import { RetryInfoSchema } from "../src/api/retry-info.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { expectCode } from "./support/assertions.ts";
import { clients, protocols, rest } from "./support/clients.ts";
import { callerWith, humanUser } from "./support/fixtures.ts";
import { eventLog } from "./support/hostile.ts";
import {
  clientPreface,
  ErrorCode,
  errorCodeOf,
  FrameType,
  getRequest,
  rawConnect,
  settingsAck,
} from "./support/raw-h2.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// Slow and abusive clients. These limits live in the listener and the API guard, below any
// database, so they run on SQLite only.

const portOf = (s: TestServer) => Number(new URL(s.url).port);

// Resolves when the server closes the connection, with whatever it sent first.
function closedBy(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    socket.on("data", (d) => {
      got += d.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve(got));
  });
}

describe("slow clients", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer("sqlite", {
      env: {
        LATCHKEY_HEADERS_TIMEOUT_MS: "400",
        LATCHKEY_REQUEST_TIMEOUT_MS: "800",
      },
    });
  });
  after(() => server.stop());

  it("drops a connection that never says a word", async () => {
    const socket = net.connect(portOf(server), "127.0.0.1");
    assert.equal(await closedBy(socket), "");
  });

  it("answers 408 to headers that never finish (slowloris) and to a body that never finishes", async () => {
    const slowHeaders = net.connect(portOf(server), "127.0.0.1", () => {
      slowHeaders.write("GET /debug/healthz HTTP/1.1\r\nhost: x\r\n");
      // One more header line now and then, never the blank line that ends them.
      const drip = setInterval(() => slowHeaders.write("x-drip: 1\r\n"), 100);
      slowHeaders.once("close", () => clearInterval(drip));
    });
    assert.match(await closedBy(slowHeaders), /^HTTP\/1\.1 408/);

    const slowBody = net.connect(portOf(server), "127.0.0.1", () => {
      slowBody.write(
        `POST /v2/organizations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${server.adminToken}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"name":`,
      );
    });
    const answer = await closedBy(slowBody);
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  it("cancels an HTTP/2 stream whose request does not finish in time", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/zitadel.org.v2.OrganizationService/AddOrganization",
      "content-type": "application/json",
      authorization: `Bearer ${server.adminToken}`,
    });
    stream.on("error", () => {});
    stream.write('{"name":');
    const status = await new Promise<number>((resolve) => {
      stream.on("response", (h) => resolve(Number(h[":status"])));
      stream.on("close", () => resolve(0));
    });
    assert.equal(status, 408);
    session.close();
  });
});

describe("connection and stream caps", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer("sqlite", {
      env: {
        LATCHKEY_MAX_CONNECTIONS: "3",
        LATCHKEY_MAX_STREAMS_PER_CONNECTION: "7",
      },
    });
  });
  after(() => server.stop());

  it("refuses connections beyond the cap and serves again once one closes", async () => {
    const held = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(portOf(server), "127.0.0.1", () => resolve(s));
          }),
      ),
    );
    const fourth = net.connect(portOf(server), "127.0.0.1");
    fourth.on("connect", () => fourth.write("GET /debug/healthz HTTP/1.1\r\nhost: x\r\n\r\n"));
    assert.equal(await closedBy(fourth), "", "the fourth connection is closed unanswered");
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await fetch(`${server.url}/debug/healthz`)).status, 200);
  });

  it("advertises its cap on concurrent HTTP/2 streams", async () => {
    const session = http2.connect(server.url);
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    assert.equal(settings.maxConcurrentStreams, 7);
    assert.equal(settings.maxHeaderListSize, 16384);
    session.close();
  });

  // node:http2, like any well-behaved client, holds back requests beyond the cap it was told;
  // these are written frame by frame. Each request is left open (no END_STREAM) so that none is
  // over before the last arrives, and all go in one write.
  const cap = 7;
  const streams = Array.from({ length: cap + 3 }, (_, i) => 1 + 2 * i);
  const admitted = streams.slice(0, cap);
  const excess = streams.slice(cap);
  const burst = () => streams.map((id) => getRequest(id, "/debug/healthz", false));
  // A response's first header is `:status: 200` as HPACK's static table entry 8.
  const status200 = 0x88;

  it("refuses HTTP/2 streams beyond its cap with REFUSED_STREAM, and serves the others", async () => {
    const c = await rawConnect(portOf(server));
    // Sent before the client acknowledges the server's SETTINGS.
    c.write(Buffer.concat([clientPreface, ...burst()]));
    for (const id of excess) {
      const reset = await c.waitFor((f) => f.type === FrameType.rstStream && f.stream === id);
      assert.equal(errorCodeOf(reset), ErrorCode.refusedStream, `stream ${id}`);
    }
    for (const id of admitted) {
      const answer = await c.waitFor((f) => f.type === FrameType.headers && f.stream === id);
      assert.equal(answer.payload[0], status200, `stream ${id}`);
    }
    // Once the admitted streams are over (answered, then reset because their requests never
    // ended), the same connection serves a new one.
    for (const id of admitted) await c.waitFor((f) => f.type === FrameType.rstStream && f.stream === id);
    const next = (streams.at(-1) ?? 0) + 2;
    c.write(getRequest(next, "/debug/healthz", true));
    const answer = await c.waitFor((f) => f.type === FrameType.headers && f.stream === next);
    assert.equal(answer.payload[0], status200);
    assert.deepEqual(
      c.frames.filter((f) => f.type === FrameType.headers && excess.includes(f.stream)),
      [],
      "a refused stream was answered",
    );
    assert.ok(!c.frames.some((f) => f.type === FrameType.goaway), "the connection was closed");
    c.destroy();
  });

  it("closes the connection of a client that exceeds the cap it acknowledged, and serves others", async () => {
    const c = await rawConnect(portOf(server));
    c.write(clientPreface);
    await c.waitFor((f) => f.type === FrameType.settings && f.flags === 0);
    // The acknowledgement and the burst in one write: the server has taken the cap as agreed
    // when the streams arrive. nghttp2 (inside node:http2) then treats the excess as an error of
    // the whole connection, which RFC 9113 (5.1.2) allows it to refuse stream by stream instead.
    c.write(Buffer.concat([settingsAck, ...burst()]));
    const goaway = await c.waitFor((f) => f.type === FrameType.goaway);
    assert.notEqual(errorCodeOf(goaway), 0, "GOAWAY with an error code");
    assert.equal(goaway.payload.readUInt32BE(0) & 0x7fffffff, admitted.at(-1), "last stream processed");
    await c.closed;
    assert.deepEqual(
      c.frames.filter((f) => f.type === FrameType.headers && excess.includes(f.stream)),
      [],
      "a stream beyond the cap was answered",
    );
    // Other connections are served as before, over HTTP/2 and HTTP/1.1.
    const session = http2.connect(server.url);
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ":path": "/debug/healthz" });
      stream.on("response", (h) => resolve(Number(h[":status"])));
      stream.on("error", reject);
      stream.end();
    });
    assert.equal(status, 200);
    session.close();
    assert.equal((await fetch(`${server.url}/debug/healthz`)).status, 200);
  });
});

describe("the write limiter", () => {
  it("allows a burst, then one write per interval, each caller on its own", () => {
    let now = 0;
    const limit = writeLimiter(60, 3, () => now);
    assert.deepEqual(
      [1, 2, 3].map(() => limit.take("a")),
      [0, 0, 0],
    );
    assert.equal(limit.take("a"), 1, "the fourth waits a second (60 a minute)");
    assert.equal(limit.take("b"), 0, "another caller has its own burst");
    now += 1000;
    assert.equal(limit.take("a"), 0);
    assert.equal(limit.take("a"), 1);
    now += 60_000;
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limit.take("a")),
      [0, 0, 0, 1],
      "refilled to the burst, no more",
    );
    assert.equal(writeLimiter(0, 1).take("a"), 0, "0 a minute: no limit");
  });
});

describe("write rate limits", () => {
  let server: TestServer;
  before(async () => {
    // One write a minute after a burst of three: the fourth is refused however slow the machine.
    server = await startTestServer("sqlite", {
      env: {
        LATCHKEY_WRITES_PER_MINUTE: "1",
        LATCHKEY_WRITE_BURST: "3",
      },
    });
  });
  after(() => server.stop());

  it("refuses a caller's writes beyond its burst with ResourceExhausted and when to retry", async () => {
    const admin = clients(server.url, server.adminToken);
    // The admin spends its burst of three.
    const user = await humanUser(admin);
    await admin.users.addOTPSMS({ userId: user.userId });
    await admin.users.removeOTPSMS({ userId: user.userId });
    const before = (await eventLog(server)).length;
    const refusal = await admin.users.addOTPSMS({ userId: user.userId }).then(
      () => null,
      (e: unknown) => ConnectError.from(e),
    );
    assert.ok(refusal, "the fourth write of the admin was accepted");
    assert.equal(refusal.code, Code.ResourceExhausted);
    const [retry] = refusal.findDetails(RetryInfoSchema) as { retryDelay?: { seconds: bigint } }[];
    assert.ok((retry?.retryDelay?.seconds ?? 0n) >= 1n, "a RetryInfo detail says when");
    for (const protocol of protocols) {
      await expectCode(
        clients(server.url, server.adminToken, protocol).users.addOTPSMS({ userId: user.userId }),
        Code.ResourceExhausted,
        "LK-RATE",
      );
    }
    const r = await fetch(`${server.url}/v2/users/${user.userId}/otp_sms`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) >= 1, "Retry-After header");
    const body = (await r.json()) as { code: number; details: { "@type": string; retryDelay?: string }[] };
    assert.equal(body.code, Code.ResourceExhausted);
    assert.match(
      body.details.find((d) => d["@type"].endsWith("google.rpc.RetryInfo"))?.retryDelay ?? "",
      /^\d+s$/,
    );
    // Reads are not counted, and nothing refused was written.
    const read = await rest(server.url, "GET", `/v2/users/${user.userId}/authentication_methods`, {
      token: server.adminToken,
    });
    assert.equal(read.status, 200);
    assert.equal((await eventLog(server)).length, before);
  });

  it("counts each caller on its own", async () => {
    const other = await startTestServer("sqlite", {
      env: {
        LATCHKEY_WRITES_PER_MINUTE: "1",
        LATCHKEY_WRITE_BURST: "3",
      },
    });
    try {
      const admin = clients(other.url, other.adminToken);
      const org = (await humanUser(admin)).orgId;
      // Two more writes (a machine user and its token) spend the admin's burst.
      const caller = await callerWith(admin, null, [], org);
      const res = await rest(other.url, "POST", "/v2/organizations", {
        token: other.adminToken,
        body: { name: "x" },
      });
      assert.equal(res.status, 429);
      // The new caller has a burst of its own: its write is judged on its merits, not counted
      // against the admin's.
      await expectCode(
        clients(other.url, caller.token).users.addOTPSMS({ userId: caller.userId }),
        Code.FailedPrecondition,
      );
    } finally {
      await other.stop();
    }
  });

  it("takes its limits from the environment, and refuses a header timeout longer than the request's", () => {
    const d = loadConfig({}).limits;
    assert.equal(d.maxBodyBytes, 1024 * 1024);
    assert.equal(d.maxHeaderBytes, 16 * 1024);
    const c = loadConfig({ LATCHKEY_WRITES_PER_MINUTE: "0", LATCHKEY_MAX_BODY_BYTES: "2048" }).limits;
    assert.equal(c.writesPerMinute, 0);
    assert.equal(c.maxBodyBytes, 2048);
    assert.throws(
      () => loadConfig({ LATCHKEY_HEADERS_TIMEOUT_MS: "5000", LATCHKEY_REQUEST_TIMEOUT_MS: "1000" }),
      (e: unknown) => e instanceof ConfigError && /LATCHKEY_HEADERS_TIMEOUT_MS/.test(e.message),
    );
    assert.throws(() => loadConfig({ LATCHKEY_MAX_BODY_BYTES: "lots" }), /LATCHKEY_MAX_BODY_BYTES/);
  });
});

describe("graceful shutdown", () => {
  it("finishes requests in flight and refuses new ones", async () => {
    const server = await startTestServer("sqlite");
    // A write whose body is still arriving when the shutdown begins, and on the same connection
    // a second request sent after it began.
    const socket = net.connect(portOf(server), "127.0.0.1");
    const answers = closedBy(socket);
    socket.write(
      `POST /v2/organizations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${server.adminToken}\r\ncontent-type: application/json\r\ncontent-length: 18\r\n\r\n{"name":`,
    );
    await new Promise((r) => setTimeout(r, 100));
    const stopped = server.stop();
    await new Promise((r) => setTimeout(r, 100));
    // A new connection is not accepted at all.
    await assert.rejects(fetch(`${server.url}/debug/healthz`));
    socket.write('"Drained"}GET /debug/healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    const text = await answers;
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [201, 503]);
    await stopped;
  });
});
