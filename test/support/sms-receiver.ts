import http from "node:http";
import type { AddressInfo } from "node:net";

// A real HTTP server on loopback standing in for an SMS provider (Twilio, a webhook receiver):
// it records every request exactly as it arrived and answers as the test says.
export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

// An answer, or "hold": keep the request open (the test may release or abandon it).
export type Answer = { status: number; body?: string; headers?: Record<string, string> } | "hold";

export interface SmsReceiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  // Decides the answer to the n-th request (0-based); 200 {} unless set.
  respond: (req: ReceivedRequest, n: number) => Answer;
  // Resolves when at least `count` requests have arrived.
  received(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  // Answers every held request with this.
  release(answer?: { status: number; body?: string }): void;
  close(): Promise<void>;
}

export async function startSmsReceiver(): Promise<SmsReceiver> {
  const requests: ReceivedRequest[] = [];
  const held: http.ServerResponse[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const receiver: SmsReceiver = {
    url: "",
    requests,
    respond: () => ({ status: 200, body: "{}" }),
    async received(count, timeoutMs = 60_000) {
      if (requests.length < count)
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(new Error(`expected ${count} requests, got ${requests.length} within ${timeoutMs} ms`)),
            timeoutMs,
          );
          waiters.push({
            count,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
      return requests.slice(0, count);
    },
    release(answer = { status: 200, body: "{}" }) {
      for (const res of held.splice(0))
        if (!res.writableEnded) res.writeHead(answer.status).end(answer.body ?? "");
    },
    async close() {
      receiver.release({ status: 503 });
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      const n = requests.length;
      requests.push(r);
      const answer = receiver.respond(r, n);
      if (answer === "hold") held.push(res);
      else res.writeHead(answer.status, answer.headers).end(answer.body ?? "");
      for (let i = waiters.length - 1; i >= 0; i--)
        if (requests.length >= waiters[i]!.count) waiters.splice(i, 1)[0]!.resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, { url: `http://127.0.0.1:${port}` });
}
