import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { Code, createContextValues } from "@connectrpc/connect";
import type { ErrorReporter } from "../api/errors.ts";
import { type Gate, guardInterceptor } from "../api/guard.ts";
import {
  codeName,
  elapsedMs,
  observingInterceptor,
  type RequestObserver,
  type RequestRecord,
  requestIdKey,
} from "../api/observe.ts";
import { writeLimiter } from "../api/rate-limit.ts";
import { restMethodNotAllowed, restNotFound, restRoutes, serveRest } from "../api/rest.ts";
import { rpcHandler } from "../api/rpc.ts";
import { servedServices } from "../api/services.ts";
import { serveUserEvents, userEventsPath } from "../api/user-events.ts";
import type { App } from "../app/app.ts";
import type { Logger } from "../app/deps.ts";
import type { Limits } from "../config.ts";
import type { Metrics } from "../metrics/prometheus.ts";
import { type Console, consolePath, loadConsole } from "./console.ts";
import { errorReporter } from "./error-reporter.ts";
import { type Listener, listen, type RequestHandler } from "./listener.ts";

export interface ServerOptions {
  readonly port: number;
  readonly host: string;
  readonly log: Logger;
  // null: no /metrics endpoint.
  readonly metrics: Metrics | null;
  // Where `npm run build` put the console.
  readonly consoleDir: string;
  readonly limits: Limits;
}

// The path of a request line, or null for one no URL parser accepts ("//", "http://[").
function urlOf(raw: string | undefined): URL | null {
  try {
    return new URL(raw ?? "/", "http://latchkey");
  } catch {
    return null;
  }
}

// A caller's own request id is kept when it is a plain token, so that its logs and ours join up.
const requestIdOf = (req: IncomingMessage | Http2ServerRequest): string => {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
};

function observerFor(log: Logger, metrics: Metrics | null): RequestObserver {
  return (record: RequestRecord) => {
    log.info("request", { ...record });
    metrics?.observeRequest(record);
  };
}

// Health first, then the console's files, then its one endpoint and the REST paths from the
// annotations, then gRPC / gRPC-web / Connect.
export function requestHandler(
  app: App,
  log: Logger,
  metrics: Metrics | null,
  web: Console,
  limits: Limits,
  reporter: ErrorReporter,
): RequestHandler {
  const observe = observerFor(log, metrics);
  const served = servedServices(app);
  const rest = restRoutes(served);
  const requestIds = new WeakMap<object, string>();
  const gate: Gate = { app, writes: writeLimiter(limits.writesPerMinute, limits.writeBurst) };
  const rpc = rpcHandler(served, {
    interceptors: [observingInterceptor(observe), guardInterceptor(gate, reporter)],
    contextValues: (req) => createContextValues().set(requestIdKey, requestIds.get(req) ?? randomUUID()),
    maxBodyBytes: limits.maxBodyBytes,
    onError: (err) => reporter.unexpected(err),
  });

  return (req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = urlOf(req.url);
    if (!url) return json(404, { code: 5, message: "Not Found", details: [] });
    if (url.pathname === "/debug/healthz") return json(200, { status: "ok" });
    if (url.pathname === "/debug/ready") {
      app.deps.store.ping().then(
        () => json(200, { status: "ready" }),
        () => json(503, { status: "database unavailable" }),
      );
      return;
    }
    if (url.pathname === "/metrics" && metrics && req.method === "GET") {
      metrics.scrape().then(
        ({ contentType, body }) => {
          res.writeHead(200, { "content-type": contentType });
          res.end(body);
        },
        (err) => json(500, { status: `metrics unavailable (${reporter.unexpected(err)})` }),
      );
      return;
    }
    if (url.pathname === "/" && req.method === "GET") {
      res.writeHead(302, { location: consolePath, "content-length": 0 });
      res.end();
      return;
    }
    if (url.pathname === consolePath.slice(0, -1) || url.pathname.startsWith(consolePath))
      return web.serve(req, res, url.pathname);

    const started = performance.now();
    const requestId = requestIdOf(req);
    res.setHeader("x-request-id", requestId);
    const eventsOf = userEventsPath(url.pathname);
    if (eventsOf !== null) {
      serveUserEvents(app, reporter, eventsOf, req, res, url).then(
        (outcome) =>
          observe({
            requestId,
            protocol: "rest",
            method: "latchkey.console/UserEvents",
            code: codeName(outcome.code),
            status: outcome.status,
            latencyMs: elapsedMs(started),
            callerId: outcome.callerId,
          }),
        (err) => reporter.unexpected(err),
      );
      return;
    }
    const m = rest.match(req.method ?? "GET", url.pathname);
    if (m === null && !/^\/(v2(beta)?|ui\/api)\//.test(url.pathname)) {
      requestIds.set(req, requestId);
      if (rpc(req, res)) return;
    }
    const unmatched = (status: number, code: Code) =>
      observe({
        requestId,
        protocol: "rest",
        method: "",
        code: codeName(code),
        status,
        latencyMs: elapsedMs(started),
        callerId: null,
      });
    if (m !== null && "allowed" in m) {
      restMethodNotAllowed(res, m.allowed);
      return unmatched(405, Code.Unimplemented);
    }
    if (m === null) {
      restNotFound(res);
      return unmatched(404, Code.NotFound);
    }
    serveRest(gate, reporter, m, req, res, url, requestId, limits.maxBodyBytes).then(
      (outcome) =>
        observe({
          requestId,
          protocol: "rest",
          method: `${m.route.service.typeName}/${m.route.method.name}`,
          code: codeName(outcome.code),
          status: outcome.status,
          latencyMs: elapsedMs(started),
          callerId: outcome.callerId,
        }),
      (err) => {
        reporter.unexpected(err);
        if (!res.headersSent) json(500, { code: 13, message: "Internal error", details: [] });
        else res.end();
      },
    );
  };
}

export function startServer(app: App, options: ServerOptions): Promise<Listener> {
  const web = loadConsole(options.consoleDir);
  if (!web.built)
    options.log.warn("the console is not built: /ui/console/ answers 503 until `npm run build`", {
      dir: options.consoleDir,
    });
  // One per server, so that its Unavailable lines are rate-limited together.
  const reporter = errorReporter(options.log);
  return listen(requestHandler(app, options.log, options.metrics, web, options.limits, reporter), {
    port: options.port,
    host: options.host,
    ...options.limits,
    onHandlerError: (err) => reporter.unexpected(err),
  });
}
