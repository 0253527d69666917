import http2 from "node:http2";
import net from "node:net";
import type { RecordedEvent } from "../../src/domain/events.ts";
import type { TestServer } from "./server.ts";

// Requests no well-behaved client sends, written byte by byte.

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

// One HTTP/1.x exchange on a fresh connection; the connection is closed after it.
export function rawHttp1(url: string, request: string | Buffer, timeoutMs = 15_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error("no answer in time")));
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const [head = "", ...rest] = text.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1] ?? 0), headers, body: rest.join("\r\n\r\n") });
    });
  });
}

export interface H2Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly trailers: Readonly<Record<string, unknown>>;
  readonly body: Buffer;
  readonly rstCode: number;
}

// One HTTP/2 request on its own session (prior knowledge, cleartext), as a gRPC client sends it.
export function rawHttp2(
  url: string,
  headers: Record<string, string>,
  body: Buffer | string = Buffer.alloc(0),
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ...headers });
    let status = 0;
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = { ...h };
    });
    stream.on("trailers", (t) => {
      trailers = { ...t };
    });
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", () => {});
    stream.on("close", () => {
      session.close();
      resolve({ status, headers: head, trailers, body: Buffer.concat(chunks), rstCode: stream.rstCode ?? 0 });
    });
    stream.end(body);
  });
}

// A gRPC / gRPC-web frame: flags, big-endian length, payload.
export function frame(payload: Buffer | Uint8Array, flags = 0, length = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, Buffer.from(payload)]);
}

// The grpc-status a gRPC-web answer ends with (its trailers travel in the body).
export function grpcWebStatus(body: Buffer): number | null {
  const m = /grpc-status:\s*(\d+)/.exec(body.toString("latin1"));
  return m?.[1] ? Number(m[1]) : null;
}

// Every event of the server's instance, in log order.
export async function eventLog(server: TestServer): Promise<RecordedEvent[]> {
  const { store } = server.running.app.deps;
  const all: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readLog(server.running.app.instanceId, all.at(-1)?.position ?? 0, 1000);
    all.push(...page);
    if (page.length < 1000) return all;
  }
}
