// The benchmark's own HTTP client (bench/http-client.ts) reads answers with a few lines of its
// own instead of node:http's parser, so a wrong reading would make the benchmark report nonsense
// without failing. These run it against a real node:http server.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { KeptAliveConnection } from "../bench/http-client.ts";

describe("the benchmark's HTTP client", () => {
  let server: http.Server;
  let port = 0;
  const sockets = new Set<unknown>();
  const seen: { method: string; url: string; auth: string; body: string }[] = [];

  // node:http answers chunked unless it is given the length.
  const answer = (
    res: http.ServerResponse,
    status: number,
    body: string,
    headers: http.OutgoingHttpHeaders = {},
  ) => res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) }).end(body);

  before(async () => {
    server = http.createServer((req, res) => {
      sockets.add(req.socket);
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => {
        body += c;
      });
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          auth: req.headers.authorization ?? "",
          body,
        });
        if (req.url === "/chunked") {
          res.write("part one, ");
          res.end("part two");
        } else if (req.url === "/close") {
          answer(res, 200, "bye", { connection: "close" });
        } else if (req.url === "/large") {
          // Several TCP segments, so the body arrives in more than one chunk.
          answer(res, 200, "x".repeat(300_000));
        } else if (req.url === "/missing") {
          answer(res, 404, '{"code":5}');
        } else {
          answer(res, 200, `{"echo":${JSON.stringify(body)}}`);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("sends method, path, headers and body, and reads status and body, on one kept-alive socket", async () => {
    sockets.clear();
    const c = new KeptAliveConnection("127.0.0.1", port, 5000);
    const auth = "authorization: Bearer t0k\r\n";
    const first = await c.request(
      "POST",
      "/v2/users/1/otp_sms",
      `${auth}content-type: application/json\r\n`,
      "{}",
    );
    const second = await c.request("DELETE", "/v2/users/1/otp_sms", auth, null);
    const missing = await c.request("GET", "/missing", auth, null);
    const large = await c.request("GET", "/large", auth, null);
    c.close();
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), '{"echo":"{}"}');
    assert.equal(second.body.toString(), '{"echo":""}');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), '{"code":5}');
    assert.equal(large.body.length, 300_000);
    assert.deepEqual(
      seen.slice(-4).map((s) => [s.method, s.url, s.auth, s.body]),
      [
        ["POST", "/v2/users/1/otp_sms", "Bearer t0k", "{}"],
        ["DELETE", "/v2/users/1/otp_sms", "Bearer t0k", ""],
        ["GET", "/missing", "Bearer t0k", ""],
        ["GET", "/large", "Bearer t0k", ""],
      ],
    );
    assert.equal(sockets.size, 1, "every request went over the same connection");
  });

  it("opens a new connection after the server closes one", async () => {
    sockets.clear();
    const c = new KeptAliveConnection("127.0.0.1", port, 5000);
    assert.equal((await c.request("GET", "/close", "", null)).body.toString(), "bye");
    assert.equal((await c.request("GET", "/after", "", null)).status, 200);
    c.close();
    assert.equal(sockets.size, 2);
  });

  it("refuses an answer it cannot measure instead of guessing its end", async () => {
    const c = new KeptAliveConnection("127.0.0.1", port, 5000);
    await assert.rejects(c.request("GET", "/chunked", "", null), /without content-length/);
    // The connection it gave up on is gone; the next request gets a new one.
    assert.equal((await c.request("GET", "/ok", "", null)).status, 200);
    c.close();
  });

  it("rejects when nothing listens", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const c = new KeptAliveConnection("127.0.0.1", freePort, 5000);
    await assert.rejects(c.request("GET", "/", "", null), /ECONNREFUSED/);
  });
});
