import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  create,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromJson,
  getOption,
  hasOption,
  type JsonObject,
  type JsonValue,
  toJson,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import { http as httpRule } from "@zitadel/proto/google/api/annotations_pb.js";
import type { HttpRule } from "@zitadel/proto/google/api/http_pb.js";
import { principalKey } from "./context.ts";
import { type ErrorReporter, httpRefusal, restErrorBody, toConnectError } from "./errors.ts";
import { admit, type Gate } from "./guard.ts";
import { requestIdKey } from "./observe.ts";
import { methodOptions, type ServedService, type UnaryHandler } from "./services.ts";
import { refuseUnstorableText } from "./text.ts";

type Segment = { readonly literal: string } | { readonly field: string };

interface Route {
  readonly verb: string;
  readonly segments: readonly Segment[];
  readonly body: string;
  readonly service: DescService;
  readonly method: DescMethod;
  readonly handler: UnaryHandler;
}

export interface RestMatch {
  readonly route: Route;
  readonly params: ReadonlyMap<string, string>;
}

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

// "/v2/users/{user_id}/otp_sms" -> [v2, users, {user_id}, otp_sms]. Variables with a
// sub-pattern ({name=...}) bind one segment, which is all ZITADEL's v2 paths use.
function parseTemplate(path: string): Segment[] {
  return path
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      const v = /^\{([\w.]+)(=[^}]*)?\}$/.exec(s);
      return v?.[1] ? { field: v[1] } : { literal: s };
    });
}

function bindingsOf(rule: HttpRule): { verb: string; path: string; body: string }[] {
  const p = rule.pattern;
  const own =
    p.case === "get" || p.case === "post" || p.case === "put" || p.case === "delete" || p.case === "patch"
      ? [{ verb: p.case.toUpperCase(), path: p.value, body: rule.body }]
      : [];
  return [...own, ...rule.additionalBindings.flatMap(bindingsOf)];
}

// Routes come from the google.api.http annotations the published descriptors carry; more
// literal segments match first, so /passkeys/registration_link wins over /passkeys/{id}.
export function restRoutes(served: readonly ServedService[]) {
  const routes: Route[] = [];
  for (const { service, handlers, restPrefix } of served) {
    for (const method of service.methods) {
      const handler = handlers[method.localName];
      if (!handler || !hasOption(method, httpRule)) continue;
      for (const b of bindingsOf(getOption(method, httpRule))) {
        routes.push({
          verb: b.verb,
          segments: parseTemplate(`${restPrefix ?? ""}${b.path}`),
          body: b.body,
          service,
          method,
          handler,
        });
      }
    }
  }
  const literals = (r: Route) => r.segments.filter((s) => "literal" in s).length;
  routes.sort((a, b) => literals(b) - literals(a));
  // Every call looks its route up: only routes of the path's length can match.
  const byLength = new Map<number, Route[]>();
  for (const route of routes) {
    const same = byLength.get(route.segments.length) ?? [];
    same.push(route);
    byLength.set(route.segments.length, same);
  }

  return {
    routes,
    // null: no REST path; { allowed }: the path exists for other verbs. Nothing is allocated for
    // a route until its literals match: a path's length admits dozens of routes, and this runs
    // on every call.
    match(verb: string, pathname: string): RestMatch | { allowed: string[] } | null {
      const parts = pathname.split("/").filter((s) => s !== "");
      const allowed: string[] = [];
      for (const route of byLength.get(parts.length) ?? []) {
        if (!literalsMatch(route.segments, parts)) continue;
        const params = paramsOf(route.segments, parts);
        if (params === null) continue;
        if (route.verb === verb) return { route, params };
        if (!allowed.includes(route.verb)) allowed.push(route.verb);
      }
      return allowed.length > 0 ? { allowed } : null;
    },
  };
}

function literalsMatch(segments: readonly Segment[], parts: readonly string[]): boolean {
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as Segment;
    if ("literal" in seg && seg.literal !== parts[i]) return false;
  }
  return true;
}

// The path's variables, decoded; null when one is not valid percent-encoding.
function paramsOf(segments: readonly Segment[], parts: readonly string[]): Map<string, string> | null {
  const params = new Map<string, string>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as Segment;
    if ("literal" in seg) continue;
    try {
      params.set(seg.field, decodeURIComponent(parts[i] as string));
    } catch {
      return null;
    }
  }
  return params;
}

export type RestRouter = ReturnType<typeof restRoutes>;

const badRequest = (message: string) => new ConnectError(message, Code.InvalidArgument);

function fieldByName(desc: DescMessage, name: string): DescField | undefined {
  return desc.fields.find((f) => f.name === name || f.jsonName === name);
}

// A path or query value as the JSON the message reader expects for that field.
function jsonValueFor(field: DescField, raw: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  if (scalar === 8 /* bool */) return raw === "true" || raw === "1";
  return raw;
}

function assign(target: JsonObject, desc: DescMessage, path: string, raw: string): void {
  const [head, ...rest] = path.split(".");
  const field = head ? fieldByName(desc, head) : undefined;
  if (!field) throw badRequest(`unknown parameter "${path}"`);
  if (rest.length > 0) {
    if (field.fieldKind !== "message") throw badRequest(`"${head}" has no field "${rest.join(".")}"`);
    const inner = (target[field.jsonName] ?? {}) as JsonObject;
    target[field.jsonName] = inner;
    assign(inner, field.message, rest.join("."), raw);
    return;
  }
  const value = jsonValueFor(field, raw);
  if (field.fieldKind === "list") {
    const list = (target[field.jsonName] ?? []) as JsonValue[];
    list.push(value);
    target[field.jsonName] = list;
  } else {
    target[field.jsonName] = value;
  }
}

const tooLarge = (max: number) =>
  httpRefusal(`request body exceeds ${max} bytes`, Code.ResourceExhausted, 413);

async function readBody(req: Request, max: number): Promise<string> {
  if (Number(req.headers["content-length"] ?? 0) > max) throw tooLarge(max);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  const buf = Buffer.concat(chunks);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw badRequest("request body is not valid UTF-8");
  }
}

// JSON, and what curl -d sends by default: grpc-gateway, which ZITADEL's REST API runs on,
// reads any body as JSON, so `curl -d '{...}'` without a content type works there and here.
const jsonTypes = /^(application\/(json|[\w.+-]*\+json|x-www-form-urlencoded))?\s*(;.*)?$/i;

async function requestMessage(m: RestMatch, req: Request, url: URL, maxBodyBytes: number) {
  const input = m.route.method.input;
  const type = String(req.headers["content-type"] ?? "");
  if (!jsonTypes.test(type))
    throw httpRefusal(
      `content type ${type} is not supported; send application/json`,
      Code.InvalidArgument,
      415,
    );
  const text = await readBody(req, maxBodyBytes);
  let json: JsonObject = {};
  if (text.trim() !== "") {
    if (m.route.body === "") throw badRequest("this method takes no request body");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw badRequest("request body is not valid JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw badRequest("request body must be a JSON object");
    json = m.route.body === "*" ? (parsed as JsonObject) : { [m.route.body]: parsed as JsonObject };
  }
  if (m.route.body !== "*") for (const [k, v] of url.searchParams) assign(json, input, k, v);
  for (const [k, v] of m.params) assign(json, input, k, v);
  let message: ReturnType<typeof fromJson>;
  try {
    message = fromJson(input, json);
  } catch (err) {
    throw badRequest(err instanceof Error ? err.message : "request does not match the method's message");
  }
  refuseUnstorableText(input, message);
  return message;
}

function headersOf(req: Request): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    // HTTP/2 pseudo-headers (":path", ...) are not headers a Headers object accepts.
    if (k.startsWith(":") || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
  }
  return h;
}

export function sendJson(
  res: Response,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const payload = JSON.stringify(body);
  // Set one by one, not spread into the literal below (domain/events.ts, inLog, says why);
  // writeHead's own headers win over these.
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

export function restNotFound(res: Response): void {
  sendJson(res, 404, { code: Code.NotFound, message: "Not Found", details: [] });
}

export function restMethodNotAllowed(res: Response, allowed: readonly string[]): void {
  sendJson(
    res,
    405,
    {
      code: Code.Unimplemented,
      message: `Method Not Allowed; this path takes ${allowed.join(", ")}`,
      details: [],
    },
    { allow: allowed.join(", ") },
  );
}

// What a REST call's handler sees. Connect's createHandlerContext links an AbortController and
// copies three Headers for every call; REST needs neither, since nothing aborts a REST call
// midway (an answer to a client that left is dropped, the work still completes) and handlers
// rarely touch a header. That per-call work was a measurable share of a REST call's CPU
// (docs/benchmarks.md, section 11).
const neverAborted = new AbortController().signal;

class RestContext implements HandlerContext {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly protocolName = "rest";
  readonly requestMethod: string;
  readonly signal = neverAborted;
  readonly timeoutMs = () => undefined;
  private headers: Headers | undefined;
  // What a handler sets here has no place in a REST answer; made only if a handler asks.
  private answerHeaders: Headers | undefined;
  private answerTrailers: Headers | undefined;

  constructor(
    route: Route,
    private readonly req: Request,
    private readonly target: URL,
    readonly values: ContextValues,
  ) {
    this.service = route.service;
    this.method = route.method;
    this.requestMethod = req.method ?? "GET";
  }

  get url(): string {
    return this.target.toString();
  }

  get requestHeader(): Headers {
    this.headers ??= headersOf(this.req);
    return this.headers;
  }

  get responseHeader(): Headers {
    this.answerHeaders ??= new Headers();
    return this.answerHeaders;
  }

  get responseTrailer(): Headers {
    this.answerTrailers ??= new Headers();
    return this.answerTrailers;
  }
}

export interface RestOutcome {
  readonly status: number;
  readonly code: Code | null;
  readonly callerId: string | null;
}

// One REST call: authenticate, read the message, run the same handler gRPC runs, answer JSON.
export async function serveRest(
  gate: Gate,
  reporter: ErrorReporter,
  m: RestMatch,
  req: Request,
  res: Response,
  url: URL,
  requestId: string,
  maxBodyBytes: number,
): Promise<RestOutcome> {
  const { route } = m;
  let callerId: string | null = null;
  try {
    const values = createContextValues();
    const principal = await gate.app.authenticate(req.headers.authorization);
    callerId = principal.userId;
    admit(gate, principal, route.method);
    values.set(principalKey, principal);
    values.set(requestIdKey, requestId);
    const input = await requestMessage(m, req, url, maxBodyBytes);
    const ctx = new RestContext(route, req, url, values);
    const out = await route.handler(input, ctx);
    const msg = create(route.method.output, out as never);
    const status = methodOptions(route.method).successCode;
    sendJson(res, status, toJson(route.method.output, msg));
    return { status, code: null, callerId };
  } catch (err) {
    const connectError = toConnectError(err, reporter);
    const { status, body, headers } = restErrorBody(connectError);
    // A body left unread (too large, or never needed) is not read to its end: the connection goes.
    const hasBody = Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"];
    if (hasBody && !req.readableEnded && "shouldKeepAlive" in res) res.shouldKeepAlive = false;
    sendJson(res, status, body, headers);
    return { status, code: connectError.code, callerId };
  }
}
