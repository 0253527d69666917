import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { extname, join, relative, sep } from "node:path";
import { gzipSync } from "node:zlib";

// The web console: static files built by `npm run build` (scripts/build-console.ts), served at
// /ui/console/ from memory. Only the files found at start are served, so no request path ever
// reaches the file system.

export const consolePath = "/ui/console/";

// The console runs no inline script or style and talks only to this origin. Trusted Types
// make any accidental HTML sink (innerHTML and its kin) an error instead of an injection.
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

// esbuild names built files name-HASH.ext: such a file never changes, so it may be kept for a
// year; index.html names the current ones and is checked on every load.
const hashed = /-[A-Z0-9]{8}\.[a-z]+$/;

interface Asset {
  readonly type: string;
  readonly cache: string;
  readonly body: Buffer;
  readonly etag: string;
  // Present when compressing pays.
  readonly gzip: { readonly body: Buffer; readonly etag: string } | null;
}

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface Console {
  // False when there was nothing built to serve.
  readonly built: boolean;
  serve(req: Request, res: Response, pathname: string): void;
}

const etagOf = (body: Buffer) => `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(join(dir, "index.html"))) return assets;
  for (const file of filesUnder(dir)) {
    const type = contentTypes[extname(file)];
    if (!type) continue;
    const name = relative(dir, file).split(sep).join("/");
    const body = readFileSync(file);
    const packed = type.startsWith("image/png") ? null : gzipSync(body, { level: 9 });
    const gzip = packed && packed.length < body.length * 0.9 ? { body: packed, etag: etagOf(packed) } : null;
    assets.set(name, {
      type,
      cache: hashed.test(name) ? "public, max-age=31536000, immutable" : "no-cache",
      body,
      etag: etagOf(body),
      gzip,
    });
  }
  return assets;
}

function plain(res: Response, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...securityHeaders,
    ...extra,
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function loadConsole(dir: string): Console {
  const assets = load(dir);
  const built = assets.has("index.html");
  return {
    built,
    serve(req, res, pathname) {
      if (pathname === consolePath.slice(0, -1)) {
        res.writeHead(308, { ...securityHeaders, location: consolePath, "content-length": 0 });
        res.end();
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD")
        return plain(res, 405, "Method Not Allowed\n", { allow: "GET, HEAD" });
      if (!built)
        return plain(
          res,
          503,
          "The console has not been built: run `npm run build`, then start Latchkey again.\n",
        );
      const name = pathname === consolePath ? "index.html" : pathname.slice(consolePath.length);
      const asset = assets.get(name);
      if (!asset) return plain(res, 404, "Not Found\n");

      const gzip =
        asset.gzip && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? "")) ? asset.gzip : null;
      const body = gzip?.body ?? asset.body;
      const etag = gzip?.etag ?? asset.etag;
      const headers: Record<string, string | number> = {
        ...securityHeaders,
        "content-type": asset.type,
        "cache-control": asset.cache,
        etag,
        vary: "accept-encoding",
      };
      if (gzip) headers["content-encoding"] = "gzip";
      const match = String(req.headers["if-none-match"] ?? "")
        .split(",")
        .some((t) => t.trim() === etag);
      if (match) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      headers["content-length"] = body.length;
      res.writeHead(200, headers);
      if (req.method === "HEAD") res.end();
      else res.end(body);
    },
  };
}
