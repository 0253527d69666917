import { randomUUID } from "node:crypto";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ErrorReporter } from "../api/errors.ts";
import { guardInterceptor } from "../api/guard.ts";
import { restMethodNotAllowed, restNotFound, restRoutes, serveRest } from "../api/rest.ts";
import { servedServices } from "../api/services.ts";
import type { App } from "../app/app.ts";
import type { Logger } from "../app/deps.ts";
import { type Listener, listen, type RequestHandler } from "./listener.ts";

export interface ServerOptions {
  readonly port: number;
  readonly host: string;
  readonly log: Logger;
}

function reporterFor(log: Logger): ErrorReporter {
  return {
    unexpected(err) {
      const ref = randomUUID();
      log.error("unexpected error", {
        ref,
        error: err instanceof Error ? err.message : String(err),
        stack: err instanceof Error ? err.stack : undefined,
      });
      return ref;
    },
  };
}

// Health first, then REST paths from the annotations, then gRPC / gRPC-web / Connect.
export function requestHandler(app: App, log: Logger): RequestHandler {
  const reporter = reporterFor(log);
  const served = servedServices(app);
  const rest = restRoutes(served);
  const connect = connectNodeAdapter({
    routes: (router) => {
      for (const s of served) s.register(router);
    },
    interceptors: [guardInterceptor(app, reporter)],
  });

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://latchkey");
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/debug/healthz") return json(200, { status: "ok" });
    if (url.pathname === "/debug/ready") {
      app.deps.store.ping().then(
        () => json(200, { status: "ready" }),
        () => json(503, { status: "database unavailable" }),
      );
      return;
    }
    const m = rest.match(req.method ?? "GET", url.pathname);
    if (m === "method") return restMethodNotAllowed(res);
    if (m) {
      serveRest(app, reporter, m, req, res, url).catch((err) => reporter.unexpected(err));
      return;
    }
    if (/^\/v2(beta)?\//.test(url.pathname)) return restNotFound(res);
    connect(req, res);
  };
}

export function startServer(app: App, options: ServerOptions): Promise<Listener> {
  return listen(requestHandler(app, options.log), options.port, options.host);
}
