// The load generator's HTTP/1.1 client: one kept-alive socket, one request at a time, as a
// pooled client in front of the server holds it. node:http's client spent about 190 µs of CPU a
// call on the 2 cores the measured server shares, and on C_http it ran out of its core before the
// bare server did (docs/benchmarks.md, 12). This one writes each request as one string and reads
// only what a measurement needs, the status and the body, the way wrk and autocannon do.
import net from "node:net";

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

const headEnd = Buffer.from("\r\n\r\n");

export class KeptAliveConnection {
  private socket: net.Socket | null = null;
  private pending: {
    resolve: (a: Answer) => void;
    reject: (e: Error) => void;
    chunks: Buffer[];
  } | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs: number,
  ) {}

  request(method: string, path: string, headers: string, body: string | null): Promise<Answer> {
    if (this.pending) return Promise.reject(new Error("one request at a time on a connection"));
    const socket = this.socket ?? this.connect();
    const length = body === null ? "" : `content-length: ${Buffer.byteLength(body)}\r\n`;
    return new Promise<Answer>((resolve, reject) => {
      this.pending = { resolve, reject, chunks: [] };
      socket.write(
        `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n${headers}${length}\r\n${body ?? ""}`,
      );
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.setTimeout(this.timeoutMs, () => socket.destroy(new Error("no answer in time")));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // Only the current socket's end concerns the request outstanding: an old one closing late
    // must not fail the request that a new one carries.
    const gone = (err?: Error) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.fail(err ?? new Error("the server closed the connection"));
    };
    socket.on("error", gone);
    socket.on("close", () => gone());
    this.socket = socket;
    return socket;
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    const p = this.pending;
    if (!p) {
      this.socket?.destroy(new Error("bytes from the server with no request outstanding"));
      return;
    }
    p.chunks.push(chunk);
    const all = p.chunks.length === 1 ? chunk : Buffer.concat(p.chunks);
    const end = all.indexOf(headEnd);
    if (end < 0) return;
    const head = all.subarray(0, end).toString("latin1");
    const status = Number(head.slice(9, 12));
    const lengthAt = head.search(/\r\ncontent-length:/i);
    if (lengthAt < 0) {
      // Chunked answers never come from the servers measured; a client that guessed would
      // measure nothing useful.
      this.socket?.destroy(new Error(`an answer without content-length: ${head.slice(0, 200)}`));
      return;
    }
    const bodyLength = Number.parseInt(head.slice(head.indexOf(":", lengthAt) + 1), 10);
    const bodyStart = end + headEnd.length;
    if (all.length < bodyStart + bodyLength) {
      p.chunks = [all];
      return;
    }
    if (all.length > bodyStart + bodyLength) {
      this.socket?.destroy(new Error("more bytes than the answer's content-length"));
      return;
    }
    this.pending = null;
    if (/\r\nconnection: *close/i.test(head)) this.close();
    p.resolve({ status, body: all.subarray(bodyStart) });
  }
}
