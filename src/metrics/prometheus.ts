import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RequestRecord } from "../api/observe.ts";
import type { AppMetrics } from "../app/deps.ts";
import type { Store } from "../app/ports.ts";
import type { SmsCounters } from "../notify/outbox-worker.ts";

// Everything Latchkey counts, in one registry per running server (tests run several in one
// process, so nothing goes to prom-client's global registry).
export interface Metrics {
  readonly app: AppMetrics;
  // The SMS outbox worker's running counts, read at each scrape.
  watchSms(read: () => Readonly<SmsCounters>): void;
  observeRequest(r: RequestRecord): void;
  scrape(): Promise<{ contentType: string; body: string }>;
}

// Request latencies of an identity server: a few ms for a read, tens for a write, seconds
// only when something is wrong.
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function prometheusMetrics(store: Store): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "latchkey_" });

  const requests = new Counter({
    name: "latchkey_requests_total",
    help: "Calls answered, by protocol, method and gRPC code",
    labelNames: ["protocol", "method", "code"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "latchkey_request_duration_seconds",
    help: "Time from a call's arrival to its answer, by protocol and method",
    labelNames: ["protocol", "method"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const appends = new Counter({
    name: "latchkey_event_appends_total",
    help: "Appends to the event store that were stored",
    registers: [registry],
  });
  const events = new Counter({
    name: "latchkey_events_appended_total",
    help: "Events stored",
    registers: [registry],
  });
  const conflicts = new Counter({
    name: "latchkey_append_conflicts_total",
    help: "Appends that lost a race with another writer; each is decided again",
    labelNames: ["by"] as const,
    registers: [registry],
  });
  // Both series exist from the start, so a rate over them never starts from nothing.
  for (const by of ["caller", "background"] as const) conflicts.inc({ by }, 0);
  const gaveUp = new Counter({
    name: "latchkey_append_conflicts_exhausted_total",
    help: "Commands that lost the race too often and answered Aborted",
    registers: [registry],
  });
  let smsCounts: (() => Readonly<SmsCounters>) | null = null;
  new Counter({
    name: "latchkey_sms_total",
    help: "SMS handled by this node's outbox worker, by outcome: sent, retried (an attempt failed and another is due), failed, expired",
    labelNames: ["outcome"] as const,
    registers: [registry],
    collect() {
      if (!smsCounts) return;
      this.reset();
      for (const [outcome, n] of Object.entries(smsCounts())) this.inc({ outcome }, n);
    },
  });

  // Read when scraped, not on every checkout: the pool keeps the counts itself.
  if (store.poolStats() !== null) {
    new Gauge({
      name: "latchkey_db_pool_connections",
      help: "Database connections of this node, by state (idle, in_use) and the pool's maximum (max)",
      labelNames: ["state"] as const,
      registers: [registry],
      collect() {
        const s = store.poolStats();
        if (!s) return;
        this.set({ state: "idle" }, s.idle);
        this.set({ state: "in_use" }, s.total - s.idle);
        this.set({ state: "max" }, s.max);
      },
    });
    new Gauge({
      name: "latchkey_db_pool_waiting",
      help: "Callers waiting for a free database connection",
      registers: [registry],
      collect() {
        this.set(store.poolStats()?.waiting ?? 0);
      },
    });
  }

  return {
    app: {
      appended(n) {
        appends.inc();
        events.inc(n);
      },
      conflict: (by) => conflicts.inc({ by }),
      gaveUp: () => gaveUp.inc(),
    },
    watchSms(read) {
      smsCounts = read;
    },
    observeRequest(r) {
      // A path no method serves is not a method: one label value for all of them keeps the
      // number of series bounded whatever clients send.
      const method = r.method === "" ? "unmatched" : r.method;
      requests.inc({ protocol: r.protocol, method, code: r.code });
      latency.observe({ protocol: r.protocol, method }, r.latencyMs / 1000);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
