import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { contentSecurityPolicy, loadConsole } from "../src/server/console.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// A request exactly as written, without fetch's normalising of the path.
function raw(
  url: string,
  path: string,
  method = "GET",
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on("error", reject);
    req.end();
  });
}

// The console's static files, as `npm test` builds them before the run.
describe("the console's files", () => {
  let server: TestServer;
  let index: string;
  before(async () => {
    server = await startTestServer("sqlite");
  });
  after(() => server.stop());

  it("serves the page with a strict Content-Security-Policy and no inline script or style", async () => {
    const res = await fetch(`${server.url}/ui/console/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-cache");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.equal(csp, contentSecurityPolicy);
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
    ])
      assert.ok(csp.split("; ").includes(directive), directive);
    assert.ok(!csp.includes("unsafe"), csp);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    index = await res.text();
    assert.match(index, /<script type="module" src="\.\/app-[A-Z0-9]{8}\.js"><\/script>/);
    assert.match(index, /<link rel="stylesheet" href="\.\/styles-[A-Z0-9]{8}\.css">/);
    assert.equal((index.match(/<script/g) ?? []).length, 1, "one script, and it has a src");
    assert.doesNotMatch(index, /\sstyle=|<style|\son[a-z]+=/i);
  });

  it("serves the built script and style with their types, for a year, compressed when asked", async () => {
    const script = /src="\.\/(app-[A-Z0-9]{8}\.js)"/.exec(index)?.[1];
    const style = /href="\.\/(styles-[A-Z0-9]{8}\.css)"/.exec(index)?.[1];
    for (const [name, type] of [
      [script, "text/javascript; charset=utf-8"],
      [style, "text/css; charset=utf-8"],
    ] as const) {
      const res = await fetch(`${server.url}/ui/console/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get("content-type"), type);
      assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.equal(res.headers.get("content-encoding"), "gzip", "fetch asks for gzip");
      const etag = res.headers.get("etag") ?? "";
      assert.match(etag, /^"[\w-]+"$/);
      assert.ok((await res.text()).length > 1000);
      const again = await fetch(`${server.url}/ui/console/${name}`, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304);
    }
    const plain = await raw(server.url, `/ui/console/${script}`);
    assert.equal(plain.headers["content-encoding"], undefined, "no gzip unless asked");
    assert.ok(Number(plain.headers["content-length"]) > 1000);
  });

  it("answers nothing but its own files", async () => {
    assert.equal((await raw(server.url, "/ui/console/missing.js")).status, 404);
    assert.equal((await raw(server.url, "/ui/console/../package.json")).status, 404);
    assert.equal((await raw(server.url, "/ui/console/..%2f..%2fpackage.json")).status, 404);
    assert.equal((await raw(server.url, "/ui/console/%2e%2e/src/main.ts")).status, 404);
    const post = await raw(server.url, "/ui/console/", "POST");
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    const bare = await raw(server.url, "/ui/console");
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.location, "/ui/console/");
    const home = await raw(server.url, "/");
    assert.equal(home.status, 302);
    assert.equal(home.headers.location, "/ui/console/");
    const head = await raw(server.url, "/ui/console/", "HEAD");
    assert.equal(head.status, 200);
  });

  it("says how to build it when it was not built", async () => {
    const empty = mkdtempSync(join(tmpdir(), "latchkey-console-"));
    const web = loadConsole(empty);
    assert.equal(web.built, false);
    const s = http.createServer((req, res) =>
      web.serve(req, res, new URL(req.url ?? "/", "http://x").pathname),
    );
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    try {
      const { port } = s.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/ui/console/`);
      assert.equal(res.status, 503);
      assert.match(await res.text(), /npm run build/);
    } finally {
      s.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
