import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface Listener {
  readonly port: number;
  // Stops accepting, lets in-flight requests finish (up to graceMs), then closes what is left.
  close(graceMs?: number): Promise<void>;
}

const preface = Buffer.from("PRI * HTTP/2.0");

// One port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the first bytes of a
// connection tell which. They are read on `readable` and put back with unshift, so the HTTP/2
// server still sees its whole preface.
export function listen(handler: RequestHandler, port: number, host: string): Promise<Listener> {
  const h1 = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | null = null;

  const track = (res: { once(e: "close", cb: () => void): unknown }) => {
    inFlight++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
      if (inFlight === 0) idle?.();
    };
    res.once("close", finish);
  };
  h1.on("request", (_req, res) => {
    track(res);
    // While draining, a kept-alive HTTP/1.1 connection is closed after its current answer.
    if (draining) res.setHeader("connection", "close");
  });
  h2.on("request", (_req, res) => track(res));
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    if (draining) s.close();
  });

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const sniff = () => {
      const chunk: Buffer | null = socket.read();
      if (chunk === null) return socket.once("readable", sniff);
      // Too few bytes to tell yet: put them back and wait for more.
      if (chunk.length < preface.length && preface.subarray(0, chunk.length).equals(chunk)) {
        socket.unshift(chunk);
        return socket.once("readable", sniff);
      }
      socket.unshift(chunk);
      (chunk.subarray(0, preface.length).equals(preface) ? h2 : h1).emit("connection", socket);
    };
    socket.once("readable", sniff);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        async close(graceMs = 10_000) {
          draining = true;
          const stopped = new Promise<void>((r) => server.close(() => r()));
          for (const s of sessions) s.close();
          h1.closeIdleConnections();
          if (inFlight > 0) {
            await Promise.race([
              new Promise<void>((r) => {
                idle = r;
              }),
              new Promise<void>((r) => setTimeout(r, graceMs).unref()),
            ]);
          }
          for (const s of sockets) s.destroy();
          await stopped;
        },
      });
    });
  });
}
