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

// What a single client may hold of the server: bytes of headers, time to send a request,
// connections, and streams on one HTTP/2 connection.
export interface ListenOptions {
  readonly port: number;
  readonly host: string;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxStreamsPerConnection: number;
  readonly shutdownGraceMs: number;
  // A handler that threw: the request is answered 500 and the process lives on.
  readonly onHandlerError: (err: unknown) => void;
}

const preface = Buffer.from("PRI * HTTP/2.0");

type Response = http.ServerResponse | http2.Http2ServerResponse;

function answer(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(payload);
}

// One port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the first bytes of a
// connection tell which. They are read on `readable` and put back with unshift, so the HTTP/2
// server still sees its whole preface.
export function listen(handler: RequestHandler, o: ListenOptions): Promise<Listener> {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | null = null;

  const track = (res: Response) => {
    inFlight++;
    let done = false;
    res.once("close", () => {
      if (done) return;
      done = true;
      inFlight--;
      if (inFlight === 0) idle?.();
    });
  };

  const serve: RequestHandler = (req, res) => {
    track(res);
    // A request that starts while draining is refused, so that a load balancer or client
    // retries it on another node; those already running finish.
    if (draining) {
      if (res instanceof http.ServerResponse) res.shouldKeepAlive = false;
      answer(res, 503, { code: 14, message: "Latchkey is shutting down; try again", details: [] });
      return;
    }
    try {
      handler(req, res);
    } catch (err) {
      o.onHandlerError(err);
      answer(res, 500, { code: 13, message: "Internal error", details: [] });
    }
  };

  const h1 = http.createServer(
    {
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.headersTimeoutMs,
      // How often Node looks for connections past those timeouts (30 s by default).
      connectionsCheckingInterval: Math.min(1000, o.headersTimeoutMs),
      maxHeaderSize: o.maxHeaderBytes,
    },
    serve,
  );
  // Node enforces headersTimeout and requestTimeout from a timer it starts when the server
  // listens; this one never does (it is handed connections), so it is told it is listening.
  h1.emit("listening");
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: o.maxStreamsPerConnection, maxHeaderListSize: o.maxHeaderBytes },
    },
    (req, res) => {
      // The advertised maxHeaderListSize is not enforced on what arrives; counted as HPACK
      // does (name + value + 32 per field), a request over the limit gets HTTP/1.1's 431.
      let headerBytes = 0;
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
        headerBytes += (req.rawHeaders[i]?.length ?? 0) + (req.rawHeaders[i + 1]?.length ?? 0) + 32;
      if (headerBytes > o.maxHeaderBytes) {
        track(res);
        answer(res, 431, { code: 8, message: "request headers are too large", details: [] });
        return;
      }
      // HTTP/2 has no request timeout of its own: a stream whose request has not fully
      // arrived in time is cancelled, as HTTP/1.1's requestTimeout does for a connection.
      const timer = setTimeout(() => {
        if (!res.headersSent) answer(res, 408, { code: 4, message: "request took too long", details: [] });
        req.stream.close(http2.constants.NGHTTP2_CANCEL);
      }, o.requestTimeoutMs);
      timer.unref();
      const clear = () => clearTimeout(timer);
      req.once("end", clear);
      res.once("close", clear);
      // Answered while the client is still sending (a refusal): once the answer is out, the
      // stream is reset instead of left open for a body nobody will read (RFC 9113, 8.1). The
      // compat response always ends with trailers, so their turn marks the end of the answer.
      // CANCEL, not NO_ERROR: Node holds a NO_ERROR close until the client's side ends.
      req.stream.once("wantTrailers", () =>
        setImmediate(() => {
          if (!req.complete && !req.stream.closed) req.stream.close(http2.constants.NGHTTP2_CANCEL);
        }),
      );
      serve(req, res);
    },
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
    // An idle session is closed gracefully (GOAWAY); a client opens a new one when it needs it.
    s.setTimeout(Math.max(o.requestTimeoutMs, 60_000), () => s.close());
    if (draining) s.close();
  });

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // A connection that never says which protocol it speaks is dropped.
    socket.setTimeout(o.headersTimeoutMs, () => socket.destroy());
    const sniff = () => {
      const chunk: Buffer | null = socket.read();
      if (chunk === null) return socket.once("readable", sniff);
      // Too few bytes to tell yet: put them back and wait for more.
      if (chunk.length < preface.length && preface.subarray(0, chunk.length).equals(chunk)) {
        socket.unshift(chunk);
        return socket.once("readable", sniff);
      }
      socket.unshift(chunk);
      socket.setTimeout(0);
      (chunk.subarray(0, preface.length).equals(preface) ? h2 : h1).emit("connection", socket);
    };
    socket.once("readable", sniff);
  });
  server.maxConnections = o.maxConnections;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        async close(graceMs = o.shutdownGraceMs) {
          draining = true;
          const stopped = new Promise<void>((r) => server.close(() => r()));
          for (const s of sessions) s.close();
          // Stops that timer too; the server itself never listened, hence the error ignored.
          h1.close(() => {});
          if (inFlight > 0) {
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([
              new Promise<void>((r) => {
                idle = r;
              }),
              new Promise<void>((r) => {
                timer = setTimeout(r, graceMs);
              }),
            ]);
            clearTimeout(timer);
          }
          for (const s of sockets) s.destroy();
          await stopped;
        },
      });
    });
  });
}
