import http from "node:http";
import {
  type DescField,
  type DescMessage,
  type DescMethod,
  fromJson,
  type JsonValue,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import fc from "fast-check";
import { restRoutes } from "../../src/api/rest.ts";
import type { ServedService } from "../../src/api/services.ts";
import { unimplementedHandlers } from "../../src/api/unimplemented.ts";
import { frame } from "./hostile.ts";

// Generated requests for the property suite (test/fuzz.test.ts): every implemented method,
// reached over REST, Connect (JSON and binary) and gRPC-web, with bodies shaped like its
// message but filled with hostile values, or no shape at all.

// The methods the server really serves: those not answered by unimplemented().
export const implementedMethods = (served: readonly ServedService[]): DescMethod[] =>
  served.flatMap(({ service, handlers }) =>
    service.methods.filter((m) => {
      const h = handlers[m.localName];
      return h !== undefined && !unimplementedHandlers.has(h);
    }),
  );

// Mostly values that get past the first checks (ids that exist, plausible names), so that
// requests reach the domain and the store; the rest hostile.
const hostileText = (known: readonly string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-z][a-z0-9.-]{0,11}$/) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z]{1,8}$/).map((s) => `${s}@example.com`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("+41791234567", "+41 79 765 43 21", "0791112233", "+1 202 555 0101"),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "",
        " ",
        "\u0000",
        "a\u0000b",
        "\ud800",
        "\udc00x",
        "\u202e\u0007",
        "line\nbreak",
        "x".repeat(201),
        "y".repeat(4000),
        "+41791234567",
        "0041 79 123 45 67",
        "ada@example.com",
        "IAM_OWNER",
        "ORG_OWNER",
        "../../etc/passwd",
        "%00",
        "' OR '1'='1",
        "$where",
        "__proto__",
        "9999999999999999999999",
      ),
    },
  );

function scalarValue(field: DescField & { fieldKind: "scalar" | "list" }, text: fc.Arbitrary<string>) {
  const scalar = field.scalar;
  if (scalar === undefined) return text;
  switch (scalar) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.base64String({ maxLength: 40 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.oneof(fc.double(), fc.constantFrom("NaN", "Infinity"));
    default:
      return fc.oneof(fc.integer(), fc.constantFrom("18446744073709551616", "-1", "0x10", 1e300));
  }
}

// JSON shaped like the message, each field optional, values hostile and sometimes of the
// wrong type, now and then with a key the message does not have.
// Built once per message type and depth: fast-check arbitraries are costly to construct.
const jsonCache = new Map<string, fc.Arbitrary<unknown>>();
let textCache: { known: readonly string[]; text: fc.Arbitrary<string> } | null = null;

export function messageJson(desc: DescMessage, known: readonly string[], depth = 3): fc.Arbitrary<unknown> {
  const key = `${desc.typeName}@${depth}`;
  if (textCache?.known !== known) {
    textCache = { known, text: hostileText(known) };
    jsonCache.clear();
  }
  const cached = jsonCache.get(key);
  if (cached) return cached;
  const built = buildMessageJson(desc, known, textCache.text, depth);
  jsonCache.set(key, built);
  return built;
}

function buildMessageJson(
  desc: DescMessage,
  known: readonly string[],
  text: fc.Arbitrary<string>,
  depth: number,
): fc.Arbitrary<unknown> {
  const fieldValue = (field: DescField): fc.Arbitrary<unknown> => {
    if (field.fieldKind === "message") {
      const m = field.message;
      if (m.typeName === "google.protobuf.Timestamp")
        return fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.constantFrom("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "soon"),
        );
      if (m.typeName.startsWith("google.protobuf."))
        return fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 1 }));
      return depth > 0 ? messageJson(m, known, depth - 1) : fc.constant({});
    }
    if (field.fieldKind === "enum")
      return fc.oneof(
        fc.integer({ min: -2, max: 12 }),
        fc.constantFrom(...field.enum.values.map((v) => v.name)),
      );
    if (field.fieldKind === "map") return fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 });
    if (field.fieldKind === "list") {
      const item: fc.Arbitrary<unknown> =
        field.listKind === "message"
          ? depth > 0
            ? messageJson(field.message, known, depth - 1)
            : fc.constant({})
          : field.listKind === "enum"
            ? fc.constantFrom(...field.enum.values.map((v) => v.name))
            : scalarValue(field, text);
      return fc.array(item, { maxLength: 3 });
    }
    return scalarValue(field, text);
  };
  // At most one member of each oneof, as a valid message has.
  const plain = fc.record(
    Object.fromEntries(desc.fields.filter((f) => !f.oneof).map((f) => [f.jsonName, fieldValue(f)])),
    { requiredKeys: [] },
  );
  const oneofs = desc.oneofs.map((o) =>
    fc.option(fc.oneof(...o.fields.map((f) => fieldValue(f).map((v) => ({ [f.jsonName]: v })))), { nil: {} }),
  );
  const shaped = fc
    .tuple(plain, ...oneofs)
    .map(([p, ...chosen]) => Object.assign({}, p, ...(chosen as object[])) as Record<string, unknown>);
  return fc.oneof(
    { weight: 6, arbitrary: shaped },
    {
      weight: 1,
      arbitrary: fc
        .tuple(shaped, fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }))
        .map(([o, k, v]) => ({ ...o, [k]: v })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(shaped, fc.jsonValue({ maxDepth: 2 }))
        .map(([o, v]) => ({ ...o, [desc.fields[0]?.jsonName ?? "x"]: v })),
    },
  );
}

export type Transport = "rest" | "connect-json" | "connect-proto" | "grpc-web" | "grpc-web-json";
export const transports: readonly Transport[] = [
  "rest",
  "connect-json",
  "connect-proto",
  "grpc-web",
  "grpc-web-json",
];

export interface FuzzRequest {
  readonly transport: Transport;
  readonly method: DescMethod;
  readonly verb: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly describe: string;
}

// The message as binary when the JSON is a valid message; else random bytes.
function binaryOf(method: DescMethod, json: unknown, bytes: Uint8Array): Buffer {
  try {
    return Buffer.from(toBinary(method.input, fromJson(method.input, json as JsonValue)));
  } catch {
    return Buffer.from(bytes);
  }
}

// A lone surrogate has no UTF-8 form: sent as the bytes it would be, which no decoder accepts.
const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return "%ED%A0%80";
  }
};

const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);

export function requests(
  served: readonly ServedService[],
  methods: readonly DescMethod[],
  tokens: readonly string[],
  known: readonly string[],
) {
  const routes = restRoutes(served).routes.filter((r) => methods.includes(r.method));
  const authorization = fc.oneof(
    { weight: 4, arbitrary: fc.constant(`Bearer ${tokens[0]}`) },
    fc.constantFrom(...tokens).map((t) => `Bearer ${t}`),
    fc.constantFrom(...tokens).map((t) => `bearer   ${t}  `),
    headerValue,
    fc.constant("Bearer"),
    fc.constant(`Bearer ${"A".repeat(8000)}`),
    fc.constant(undefined),
  );
  const contentType = (natural: string) =>
    fc.oneof(
      { weight: 8, arbitrary: fc.constant(natural) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          "text/plain",
          "application/json; charset=latin1",
          "application/proto",
          "application/grpc-web+proto",
          "application/grpc-web-text",
          "multipart/form-data; boundary=x",
          "",
        ),
      },
    );
  const extraHeaders = fc.dictionary(headerName, headerValue, { maxKeys: 3 });
  const mangle = (body: Buffer) =>
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(body) },
      {
        weight: 1,
        arbitrary: fc.nat().map((n) => body.subarray(0, body.length === 0 ? 0 : n % body.length)),
      },
      {
        weight: 1,
        arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([body, Buffer.from(b)])),
      },
    );

  const rpc = fc
    .record({
      method: fc.constantFrom(...methods),
      transport: fc.constantFrom<Transport>("connect-json", "connect-proto", "grpc-web", "grpc-web-json"),
      bytes: fc.uint8Array({ maxLength: 64 }),
      raw: fc.constantFrom(false, false, false, true),
    })
    .chain(({ method, transport, bytes, raw }) =>
      fc
        .record({
          json: messageJson(method.input, known),
          authorization,
          extra: extraHeaders,
          type: contentType(
            {
              "connect-json": "application/json",
              "connect-proto": "application/proto",
              "grpc-web": "application/grpc-web+proto",
              "grpc-web-json": "application/grpc-web+json",
              rest: "application/json",
            }[transport],
          ),
        })
        .chain(({ json, authorization: auth, extra, type }) => {
          const payload =
            transport === "connect-json" || transport === "grpc-web-json"
              ? raw
                ? Buffer.from(bytes)
                : Buffer.from(JSON.stringify(json))
              : binaryOf(method, raw ? null : json, bytes);
          const body = transport.startsWith("grpc-web") ? frame(payload) : payload;
          return mangle(body).map(
            (b): FuzzRequest => ({
              transport,
              method,
              verb: "POST",
              path: `/${method.parent.typeName}/${method.name}`,
              headers: {
                ...extra,
                "content-type": type,
                ...(auth === undefined ? {} : { authorization: auth }),
              },
              body: b,
              describe: `${transport} ${method.name} ${JSON.stringify(json).slice(0, 300)}`,
            }),
          );
        }),
    );

  const segment = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: hostileText(known).map((s) => enc(s) || "x") },
    { weight: 1, arbitrary: fc.constantFrom("%", "%zz", "%00", "..", "%2F", "a%ED%A0%80b") },
  );
  const restCall = fc
    .record({
      route: fc.constantFrom(...routes),
      verb: fc.oneof(
        { weight: 8, arbitrary: fc.constant("") },
        { weight: 1, arbitrary: fc.constantFrom("GET", "PUT", "PATCH", "DELETE", "POST", "OPTIONS") },
      ),
    })
    .chain(({ route, verb }) =>
      fc
        .record({
          parts: fc.tuple(...route.segments.map((s) => ("literal" in s ? fc.constant(s.literal) : segment))),
          query: fc.array(fc.tuple(fc.string({ maxLength: 12 }), hostileText(known)), { maxLength: 2 }),
          json: messageJson(route.method.input, known),
          bytes: fc.option(fc.uint8Array({ maxLength: 64 }), { freq: 8 }),
          authorization,
          extra: extraHeaders,
          type: contentType("application/json"),
        })
        .map(({ parts, query, json, bytes, authorization: auth, extra, type }): FuzzRequest => {
          const qs = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
          return {
            transport: "rest",
            method: route.method,
            verb: verb || route.verb,
            path: `/${parts.join("/")}${qs ? `?${qs}` : ""}`,
            headers: {
              ...extra,
              "content-type": type,
              ...(auth === undefined ? {} : { authorization: auth }),
            },
            body: bytes ? Buffer.from(bytes) : Buffer.from(JSON.stringify(json)),
            describe: `rest ${verb || route.verb} ${route.method.name} ${JSON.stringify(json).slice(0, 300)}`,
          };
        }),
    );

  const anyPath = fc
    .record({
      path: fc.oneof(
        fc.webPath(),
        fc.string({ maxLength: 40 }).map((s) => `/${enc(s)}`),
      ),
      verb: fc.constantFrom("GET", "POST", "DELETE", "PUT"),
      authorization,
    })
    .map(
      ({ path, verb, authorization: auth }): FuzzRequest => ({
        transport: "rest",
        method: methods[0] ?? UserService.method.getUserByID,
        verb,
        path: path.startsWith("/") ? path : `/${path}`,
        headers: auth === undefined ? {} : { authorization: auth },
        body: Buffer.alloc(0),
        describe: `path ${verb} ${path}`,
      }),
    );

  return fc.oneof(
    { weight: 5, arbitrary: rpc },
    { weight: 4, arbitrary: restCall },
    { weight: 1, arbitrary: anyPath },
  );
}

export interface FuzzAnswer {
  readonly status: number;
  readonly body: Buffer;
  // gRPC-web carries its status in the body's trailer frame.
  readonly grpcStatus: number | null;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export function send(baseUrl: string, r: FuzzRequest): Promise<FuzzAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: hostname,
        port,
        method: r.verb,
        path: r.path,
        // Node's client sends a GET body without a length unless told, and the server would
        // rightly read it as the start of the next request.
        headers: { ...r.headers, "content-length": String(r.body.length) },
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const m = /grpc-status:\s*(\d+)/.exec(body.toString("latin1"));
          const header = res.headers["grpc-status"];
          resolve({
            status: res.statusCode ?? 0,
            body,
            grpcStatus: m?.[1] ? Number(m[1]) : header ? Number(header) : null,
          });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error("no answer in 20s")));
    req.on("error", reject);
    req.end(r.body);
  });
}
