import net from "node:net";

// An HTTP/2 client that writes frames by hand, to do what a well-behaved client (node:http2
// among them) never does: open more streams at once than the server allows. Requests are
// cleartext HTTP/2 with prior knowledge, as gRPC clients speak to Latchkey.

export const FrameType = { data: 0, headers: 1, rstStream: 3, settings: 4, goaway: 7 } as const;
// RFC 9113, 7.
export const ErrorCode = { protocol: 1, internal: 2, refusedStream: 7, cancel: 8 } as const;
const flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4 } as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

function frame(type: number, flags: number, stream: number, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

// HPACK's "literal header field without indexing, new name" (RFC 7541, 6.2.2), which needs no
// table; the names and values here are all shorter than 127 bytes.
const literal = (name: string, value: string) =>
  Buffer.concat([
    Buffer.from([0, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);

// A GET on `path` that opens stream `stream`; left open (no END_STREAM) unless `end`.
export function getRequest(stream: number, path: string, end: boolean): Buffer {
  const block = Buffer.concat([
    literal(":method", "GET"),
    literal(":scheme", "http"),
    literal(":path", path),
    literal(":authority", "127.0.0.1"),
  ]);
  return frame(FrameType.headers, flag.endHeaders | (end ? flag.endStream : 0), stream, block);
}

export const clientPreface = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  frame(FrameType.settings, 0, 0),
]);
export const settingsAck = frame(FrameType.settings, flag.ack, 0);

// The error code of a RST_STREAM or GOAWAY frame.
export const errorCodeOf = (f: Frame) => f.payload.readUInt32BE(f.type === FrameType.goaway ? 4 : 0);

export interface RawConnection {
  readonly frames: readonly Frame[];
  write(bytes: Buffer): void;
  // Resolves with the first frame (old or new) that matches, or rejects after `ms`.
  waitFor(match: (f: Frame) => boolean, ms?: number): Promise<Frame>;
  readonly closed: Promise<void>;
  destroy(): void;
}

export function rawConnect(port: number): Promise<RawConnection> {
  const socket = net.connect(port, "127.0.0.1");
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  let pending = Buffer.alloc(0);
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      frames.push({
        type: pending[3] ?? -1,
        flags: pending[4] ?? 0,
        stream: pending.readUInt32BE(5) & 0x7fffffff,
        payload: pending.subarray(9, 9 + length),
      });
      pending = pending.subarray(9 + length);
    }
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const connection: RawConnection = {
    frames,
    write: (bytes) => socket.write(bytes),
    waitFor(match, ms = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`no such frame within ${ms} ms; got ${JSON.stringify(frames.map(describe))}`));
        }, ms);
        const look = () => {
          const found = frames.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(look);
          resolve(found);
        };
        waiters.add(look);
        look();
      });
    },
    closed,
    destroy: () => socket.destroy(),
  };
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(connection));
    socket.once("error", reject);
  });
}

const describe = (f: Frame) => `${f.type}/${f.flags}@${f.stream}`;
