import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { type DescMessage, fromBinary, type JsonReadOptions } from "@bufbuild/protobuf";
import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";
import {
  Code,
  ConnectError,
  type ContextValues,
  createConnectRouter,
  createContextKey,
  type Interceptor,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { ServedService } from "./services.ts";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

// Why a request's message was not handed to its method; the guard answers it with this.
export const malformedKey = createContextKey<ConnectError | null>(null, {
  description: "refused request body",
});

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// protobuf-es reads strings through one process-wide codec that replaces invalid UTF-8 with
// U+FFFD; Latchkey refuses such a message instead of storing text the client never sent.
function useStrictUtf8(): void {
  const current = getTextEncoding();
  configureTextEncoding({ ...current, decodeUtf8: (bytes) => strictUtf8.decode(bytes) });
}

const envelopeTypes = /^application\/grpc(-web)?(\+proto|\+json)?(;.*)?$/i;
const binaryTypes = /^application\/(grpc(-web)?(\+proto)?|proto)$/i;

function decompress(data: Uint8Array, encoding: string | null, max: number): Uint8Array | null {
  if (encoding === "gzip") return gunzipSync(data, { maxOutputLength: max });
  if (encoding === "br") return brotliDecompressSync(data, { maxOutputLength: max });
  return null;
}

// The message bytes of a whole request body, or null where Connect is better placed to answer
// (an encoding it does not know); an incomplete frame at the end Connect answers too.
function messagesOf(body: Uint8Array, enveloped: boolean, encoding: string | null, max: number) {
  if (!enveloped) {
    if (encoding === null || encoding === "identity") return [body];
    const plain = decompress(body, encoding, max);
    return plain ? [plain] : null;
  }
  // Whole frames are all checked, even before an incomplete one: Connect parses those first.
  const out: Uint8Array[] = [];
  for (let at = 0; at < body.length; ) {
    if (body.length - at < 5) return out;
    const flags = body[at] ?? 0;
    const length = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    if (body.length - at - 5 < length) return out;
    const data = body.subarray(at + 5, at + 5 + length);
    if (flags & 1) {
      if (encoding === null || encoding === "identity")
        throw new Error("a frame is marked compressed, but grpc-encoding names no compression");
      const plain = decompress(data, encoding, max);
      if (!plain) return null;
      out.push(plain);
    } else out.push(data);
    at += 5 + length;
  }
  return out;
}

async function* once(bytes: Uint8Array) {
  yield bytes;
}

// Connect leaves an HTTP/2 stream open when it refuses a body before reading it to the end, and
// answers a binary message it cannot parse with Internal (HTTP 500), as if the fault were ours.
// So the body is read here first, up to the limit, and a binary one parsed; a body that is too
// large or malformed is swapped for an empty message and marked, and the guard answers it.
async function readRequestBody(
  input: DescMessage,
  header: Headers,
  body: AsyncIterable<Uint8Array>,
  max: number,
): Promise<{ body: AsyncIterable<Uint8Array>; refusal: ConnectError | null }> {
  const type = header.get("content-type") ?? "";
  const enveloped = envelopeTypes.test(type);
  const encodingHeader = enveloped ? "grpc-encoding" : "content-encoding";
  const refuse = (refusal: ConnectError) => {
    header.delete(encodingHeader);
    header.delete("content-length");
    const json = !binaryTypes.test(type);
    const empty = json ? new TextEncoder().encode("{}") : new Uint8Array(0);
    return { body: once(enveloped ? frameOf(empty) : empty), refusal };
  };
  const chunks: Uint8Array[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (let r = await it.next(); !r.done; r = await it.next()) {
    chunks.push(r.value);
    size += r.value.byteLength;
    // The rest stays unread: HTTP/1.1 closes the connection after the answer, and an HTTP/2
    // client that keeps its stream open anyway loses it at the request timeout.
    if (size > max + 5)
      return refuse(new ConnectError(`request body exceeds ${max} bytes`, Code.ResourceExhausted));
  }
  const all = Buffer.concat(chunks);
  if (!binaryTypes.test(type)) return { body: once(all), refusal: null };
  try {
    const messages = messagesOf(all, enveloped, header.get(encodingHeader), max);
    if (messages === null) return { body: once(all), refusal: null };
    for (const m of messages) fromBinary(input, m);
    return { body: once(all), refusal: null };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const message = /encoded data was not valid/.test(reason)
      ? "a string in the request message is not valid UTF-8"
      : /compress/.test(reason)
        ? reason
        : `the request message is not valid protobuf (${reason})`;
    return refuse(new ConnectError(message, Code.InvalidArgument));
  }
}

function frameOf(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

export interface RpcOptions {
  readonly interceptors: Interceptor[];
  // The context a call starts with (its request id).
  readonly contextValues: (req: Request) => ContextValues;
  readonly maxBodyBytes: number;
  readonly onError: (err: unknown) => void;
}

// gRPC, gRPC-web and Connect for the served services: connectNodeAdapter's job, with request
// sizes bounded, unknown JSON fields and invalid UTF-8 refused, malformed binary messages
// answered as the client's fault, and no request able to throw out of the handler.
export function rpcHandler(served: readonly ServedService[], o: RpcOptions) {
  useStrictUtf8();
  // Connect hands jsonOptions to its JSON reader, which also takes a textDecoder (typed there only).
  const jsonOptions: Partial<JsonReadOptions> & { textDecoder: typeof strictUtf8 } = {
    ignoreUnknownFields: false,
    textDecoder: strictUtf8,
  };
  const router = createConnectRouter({
    interceptors: o.interceptors,
    readMaxBytes: o.maxBodyBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
    jsonOptions,
  });
  for (const s of served) s.register(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));

  // false: no RPC lives at this path.
  return (req: Request, res: Response): boolean => {
    const handler = handlers.get((req.url ?? "").split("?", 1)[0] ?? "");
    if (!handler) return false;
    const values = o.contextValues(req);
    (async () => {
      const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
      // Unary calls only: a stream's messages are not there to be read first (none is served).
      const body = uReq.body;
      const iterable = typeof body === "object" && body !== null && Symbol.asyncIterator in body;
      if (iterable && handler.method.methodKind === "unary") {
        const checked = await readRequestBody(
          handler.method.input,
          uReq.header,
          body as AsyncIterable<Uint8Array>,
          o.maxBodyBytes,
        );
        values.set(malformedKey, checked.refusal);
        // A body too large was left unread: this HTTP/1.1 connection cannot carry another request.
        const unread = checked.refusal?.code === Code.ResourceExhausted;
        if (unread && "shouldKeepAlive" in res) res.shouldKeepAlive = false;
        const uRes = await handler({ ...uReq, body: checked.body });
        await universalResponseToNodeResponse(uRes, res);
      } else {
        await universalResponseToNodeResponse(await handler(uReq), res);
      }
    })().catch((err: unknown) => {
      const e = ConnectError.from(err);
      // A request without a host (HTTP/1.0) cannot be served as RPC; a client that went away
      // needs no answer.
      const noHost = /request authority/.test(e.rawMessage);
      if (!noHost && e.code !== Code.Aborted && e.code !== Code.Canceled) o.onError(err);
      if (!res.headersSent) {
        res.writeHead(noHost ? 400 : 500, { "content-type": "application/json" });
        res.end(
          JSON.stringify(
            noHost
              ? { code: "invalid_argument", message: "a request needs a Host header" }
              : { code: "internal", message: "Internal error" },
          ),
        );
      } else res.end();
    });
    return true;
  };
}
