import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { GetUserByIDRequestSchema } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { eventLog, frame, grpcWebStatus, rawHttp1, rawHttp2 } from "./support/hostile.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const getUser = "/zitadel.user.v2.UserService/GetUserByID";
const addHuman = "/zitadel.user.v2.UserService/AddHumanUser";
const mib = 1024 * 1024;

const human = (over: Record<string, unknown> = {}, profile: Record<string, unknown> = {}) => ({
  username: `u${Math.random().toString(36).slice(2)}`,
  profile: { givenName: "Ada", familyName: "Lovelace", ...profile },
  email: { email: "ada@example.com" },
  ...over,
});

for (const db of databaseKinds) {
  describe(`hostile input (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let auth: Record<string, string>;
    let logBefore: number;
    let user: Awaited<ReturnType<typeof humanUser>>;
    let machineId: string;
    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      auth = { authorization: `Bearer ${server.adminToken}` };
      user = await humanUser(admin);
      machineId = (
        await admin.users.createUser({
          organizationId: user.orgId,
          userType: { case: "machine", value: { name: "bot" } },
        })
      ).id;
      logBefore = (await eventLog(server)).length;
    });
    after(async () => {
      // Nothing refused here reached the event log, and the server still answers.
      assert.equal((await eventLog(server)).length, logBefore, "a refused request wrote an event");
      assert.equal((await fetch(`${server.url}/debug/ready`)).status, 200);
      await server.stop();
    });

    const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(`${server.url}${path}`, { method: "POST", headers: { ...auth, ...headers }, body });

    it("bounds the request body: 413 over REST, ResourceExhausted over Connect, gRPC-web and gRPC", async () => {
      const big = JSON.stringify(human({ username: "x".repeat(mib + 10) }));
      const r = await post("/v2/users/human", big, { "content-type": "application/json" });
      assert.equal(r.status, 413);
      assert.equal(((await r.json()) as { code: unknown }).code, Code.ResourceExhausted);
      const c = await post(addHuman, big, { "content-type": "application/json" });
      assert.equal(c.status, 429);
      assert.equal(((await c.json()) as { code: unknown }).code, "resource_exhausted");
      const w = await post(getUser, frame(Buffer.alloc(0), 0, 0x7fffffff), {
        "content-type": "application/grpc-web+proto",
      });
      assert.equal(grpcWebStatus(Buffer.from(await w.arrayBuffer())), Code.ResourceExhausted);
      await expectCode(
        admin.users.addHumanUser(human({ username: "x".repeat(2 * mib) })),
        Code.ResourceExhausted,
      );
      const g = await rawHttp2(
        server.url,
        { ":path": addHuman, "content-type": "application/grpc", te: "trailers", ...auth },
        frame(Buffer.alloc(2 * mib, 0x41)),
      );
      assert.equal(g.trailers["grpc-status"], String(Code.ResourceExhausted));
      // A compressed body is held to the limit once inflated.
      const bomb = gzipSync(Buffer.from(big));
      const z = await post(addHuman, bomb, {
        "content-type": "application/json",
        "content-encoding": "gzip",
      });
      assert.equal(z.status, 429);
    });

    it("bounds request headers over HTTP/1.1 and HTTP/2", async () => {
      const h1 = await rawHttp1(
        server.url,
        `GET /debug/healthz HTTP/1.1\r\nhost: x\r\nx-pad: ${"a".repeat(20_000)}\r\n\r\n`,
      );
      assert.equal(h1.status, 431);
      const h2 = await rawHttp2(server.url, {
        ":path": getUser,
        "content-type": "application/grpc",
        "x-pad": "a".repeat(20_000),
      });
      assert.equal(h2.status, 431);
    });

    it("refuses ids and text outside ZITADEL's lengths, and control characters, with a clear message", async () => {
      const cases: [unknown, string, RegExp][] = [
        [human({ username: "u".repeat(201) }), "LK-TOO-LONG", /Username must be at most 200/],
        [human({}, { givenName: "g".repeat(201) }), "LK-TOO-LONG", /Given name/],
        [human({}, { nickName: "n".repeat(201) }), "LK-TOO-LONG", /Nick name/],
        [human({}, { preferredLanguage: "de-CH-x-verylong" }), "LK-TOO-LONG", /Preferred language/],
        [human({}, { givenName: "Ada\u0007" }), "LK-CONTROL-CHARS", /control characters/],
        [human({ username: "line\nbreak" }), "LK-CONTROL-CHARS", /Username/],
        [human({ email: { email: `${"e".repeat(195)}@example.com` } }), "LK-TOO-LONG", /Email/],
        [human({ email: { email: "not-an-address" } }), "EMAIL-599BI", /Email is invalid/],
        [human({ phone: { phone: `+41${"1".repeat(200)}` } }), "LK-TOO-LONG", /Phone number/],
        [human({ userId: "i".repeat(201) }), "LK-ID200", /User ID must be at most 200/],
        [human({ organization: { orgId: "o".repeat(201) } }), "LK-ID200", /Organization ID/],
      ];
      for (const [body, id, message] of cases) {
        const r = await rest(server.url, "POST", "/v2/users/human", { token: server.adminToken, body });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.details[0].id, id, r.body.message);
        assert.match(r.body.message, message);
      }
      const m = (over: Record<string, unknown>) => ({
        organizationId: user.orgId,
        userType: { case: "machine" as const, value: { name: "bot", ...over } },
      });
      await expectCode(
        admin.users.createUser(m({ description: "d".repeat(501) })),
        Code.InvalidArgument,
        "LK-TOO-LONG",
      );
      await expectCode(
        admin.users.createUser(m({ name: "tab\there" })),
        Code.InvalidArgument,
        "LK-CONTROL-CHARS",
      );
      await expectCode(
        admin.orgs.addOrganization({ name: "o".repeat(201) }),
        Code.InvalidArgument,
        "LK-TOO-LONG",
      );
      await expectCode(
        admin.users.verifyPhone({ userId: "someone", verificationCode: "c".repeat(21) }),
        Code.InvalidArgument,
        "LK-TOO-LONG",
      );
      await expectCode(
        admin.users.removePersonalAccessToken({ userId: "someone", tokenId: "t".repeat(201) }),
        Code.InvalidArgument,
        "LK-ID200",
      );
      // A far-away date that protobuf's binary form can carry but no store can.
      await expectCode(
        admin.users.addPersonalAccessToken({ userId: machineId, expirationDate: { seconds: 10n ** 15n } }),
        Code.InvalidArgument,
        "LK-DATE-RANGE",
      );
    });

    it("refuses NUL and unpaired surrogates in any string, on every protocol", async () => {
      const r = await rest(server.url, "POST", "/v2/organizations", {
        token: server.adminToken,
        body: '{"name":"a\\u0000b"}',
      });
      assert.equal(r.status, 400);
      assert.match(r.body.message, /name contains a NUL character/);
      const path = await rest(server.url, "GET", "/v2/users/a%00b", { token: server.adminToken });
      assert.equal(path.status, 400);
      for (const protocol of protocols) {
        const c = clients(server.url, server.adminToken, protocol);
        await expectCode(c.orgs.addOrganization({ name: "nul\u0000inside" }), Code.InvalidArgument);
        await expectCode(c.users.getUserByID({ userId: `${user.userId}\u0000` }), Code.InvalidArgument);
      }
      // Clients cannot even encode a lone surrogate in binary; in JSON it can be written escaped.
      const lone = await post(getUser, '{"userId":"\\ud800"}', { "content-type": "application/json" });
      assert.equal(lone.status, 400);
    });

    it("refuses unknown fields, wrong types and invalid UTF-8 in JSON, over REST and Connect", async () => {
      const badUtf8 = Buffer.concat([
        Buffer.from('{"userId":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      for (const [path, body] of [
        ["/v2/organizations", '{"name":"x","surprise":1}'],
        ["/v2/organizations", '{"name":42}'],
        ["/v2/organizations", '{"name":["x"]}'],
        ["/v2/organizations", "[1,2]"],
        ["/v2/organizations", badUtf8],
      ] as const) {
        const r = await post(path, body, { "content-type": "application/json" });
        assert.equal(r.status, 400, String(body));
        assert.equal(((await r.json()) as { code: unknown }).code, Code.InvalidArgument);
      }
      for (const body of ['{"userId":"1","surprise":1}', '{"userId":5}', badUtf8, "{"]) {
        const r = await post(getUser, body, { "content-type": "application/json" });
        assert.equal(r.status, 400, String(body));
        assert.equal(((await r.json()) as { code: unknown }).code, "invalid_argument");
      }
    });

    it("answers truncated, malformed and mislabelled protobuf as the client's fault", async () => {
      const valid = Buffer.from(
        toBinary(GetUserByIDRequestSchema, create(GetUserByIDRequestSchema, { userId: "1" })),
      );
      const truncated = valid.subarray(0, valid.length - 1);
      const badUtf8 = Buffer.from([0x0a, 0x02, 0xff, 0xfe]);
      for (const body of [truncated, badUtf8, Buffer.from([0xff, 0xff, 0xff])]) {
        const r = await post(getUser, body, { "content-type": "application/proto" });
        assert.equal(r.status, 400);
        assert.equal(((await r.json()) as { code: unknown }).code, "invalid_argument");
      }
      const gw = (body: Buffer, headers: Record<string, string> = {}) =>
        post(getUser, body, { "content-type": "application/grpc-web+proto", ...headers }).then(async (r) =>
          grpcWebStatus(Buffer.from(await r.arrayBuffer())),
        );
      assert.equal(await gw(frame(truncated)), Code.InvalidArgument);
      assert.equal(
        await gw(frame(valid, 0, valid.length + 10)),
        Code.InvalidArgument,
        "frame shorter than it says",
      );
      assert.equal(await gw(Buffer.from([0, 0])), Code.InvalidArgument, "no whole frame header");
      assert.equal(await gw(frame(valid, 1)), Code.InvalidArgument, "compressed, but no encoding named");
      assert.equal(await gw(frame(gzipSync(badUtf8), 1), { "grpc-encoding": "gzip" }), Code.InvalidArgument);
      const h2 = await rawHttp2(
        server.url,
        { ":path": getUser, "content-type": "application/grpc", te: "trailers", ...auth },
        frame(truncated),
      );
      assert.equal(h2.trailers["grpc-status"], String(Code.InvalidArgument));

      for (const type of ["text/xml", "application/grpc-web-text", "multipart/form-data"]) {
        const r = await post(getUser, valid, { "content-type": type });
        assert.equal(r.status, 415, type);
        const x = await post("/v2/organizations", '{"name":"x"}', { "content-type": type });
        assert.equal(x.status, 415, type);
        assert.equal(((await x.json()) as { code: unknown }).code, Code.InvalidArgument);
      }
    });

    it("answers a wrong method on a REST path with 405 and the methods it takes", async () => {
      const put = await rest(server.url, "PUT", `/v2/users/${user.userId}/otp_sms`, {
        token: server.adminToken,
      });
      assert.equal(put.status, 405);
      const raw = await fetch(`${server.url}/v2/users/${user.userId}/otp_sms`, {
        method: "PATCH",
        headers: auth,
      });
      assert.equal(raw.status, 405);
      assert.deepEqual(raw.headers.get("allow")?.split(", ").sort(), ["DELETE", "POST"]);
    });

    it("decodes a REST path's variables, and answers 404 for one that is not percent-encoding", async () => {
      const first = user.userId.charCodeAt(0).toString(16);
      const encoded = `%${first}${user.userId.slice(1)}`;
      const found = await rest(server.url, "GET", `/v2/users/${encoded}`, { token: server.adminToken });
      assert.equal(found.status, 200);
      assert.equal(found.body.user.userId, user.userId);
      for (const method of ["DELETE", "PUT"]) {
        const broken = await rest(server.url, method, "/v2/users/%E0%A4%A/otp_sms", {
          token: server.adminToken,
        });
        assert.equal(broken.status, 404, method);
        assert.equal(broken.body.code, Code.NotFound, method);
      }
    });

    it("survives request lines and headers no URL parser or RPC router expects", async () => {
      for (const request of [
        `POST ${getUser} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`,
        "GET // HTTP/1.1\r\nhost: x\r\n\r\n",
        "GET http://[::1 HTTP/1.1\r\nhost: x\r\n\r\n",
        "GARBAGE\r\n\r\n",
        `POST /v2/organizations HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
      ]) {
        const r = await rawHttp1(server.url, request);
        assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(request)} -> ${r.status}`);
      }
      assert.equal((await fetch(`${server.url}/debug/ready`)).status, 200);
    });

    it("accepts the README's curl call, whose body curl labels as a form", async () => {
      const r = await post("/v2/users/human", JSON.stringify(human()), {
        "content-type": "application/x-www-form-urlencoded",
      });
      assert.equal(r.status, 200);
      logBefore += 1;
    });
  });
}
