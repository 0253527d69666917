import type { Logger } from "../app/deps.ts";
import {
  type ClaimedMessage,
  type Clock,
  OutboxClaimLost,
  SmsDeliveryError,
  type SmsSender,
  type Store,
} from "../app/ports.ts";
import { openText } from "../app/secrets.ts";
import type { SmsOutcome } from "../app/sms-outbox.ts";

export interface OutboxWorkerSettings {
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  // One provider call's limit; an attempt older than about twice this was cut off.
  readonly timeoutMs: number;
  readonly outboxKey: Buffer | null;
  // How often other nodes' messages are looked for; this node's own wake the worker at once.
  readonly pollMs?: number;
  // Messages on their way at once, each one provider call (LATCHKEY_SMS_CONCURRENCY). A provider
  // that refuses this many at once answers 429, which is retried with backoff.
  readonly concurrency: number;
}

export interface OutboxWorkerDeps {
  readonly store: Store;
  readonly instanceId: string;
  readonly sender: SmsSender;
  // Records the outcome on the user and settles the message, in one append.
  readonly record: (m: ClaimedMessage, outcome: SmsOutcome) => Promise<void>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly random?: () => number;
}

export interface SmsCounters {
  sent: number;
  retried: number;
  failed: number;
  expired: number;
}

export interface OutboxWorker {
  // A message was stored: look now instead of at the next poll.
  wake(): void;
  // Resolves after a look for due messages, begun after this call, found none.
  idle(): Promise<void>;
  counters(): Readonly<SmsCounters>;
  // Stops looking, lets attempts in flight finish and record their outcome.
  stop(): Promise<void>;
}

const maxBackoffMs = 15 * 60_000;
const pruneEveryMs = 3600_000;
// Settled messages stay a week for diagnosis (without their text); limit counts two hours,
// more than the one-hour window they serve.
const keepSettledMs = 7 * 24 * 3600_000;
const keepCountsMs = 2 * 3600_000;
// How much later than its due time a message may become visible to a look: an append takes its
// time before it commits, and a batch ahead of it may commit first.
const lateCommitMs = 1000;

// Sends what the outbox holds. The guarantee, per message:
// - the attempt is recorded (status "sending", attempts + 1) before the provider is called;
// - an attempt whose outcome is known to be "not taken" (no connection, 408/429/5xx) is tried
//   again later, with exponential backoff and jitter, up to maxAttempts;
// - an attempt that may have reached the provider without an answer recorded here (cut off
//   mid-request, or the process died) is never repeated: the message is settled as failed
//   with reason "unknown". So a message is sent at most once; a crash at the wrong moment can
//   lose it, and the user asks for a new code.
export function startOutboxWorker(deps: OutboxWorkerDeps, settings: OutboxWorkerSettings): OutboxWorker {
  const { store, instanceId, sender, clock, log } = deps;
  const random = deps.random ?? Math.random;
  const pollMs = settings.pollMs ?? 1000;
  const inFlightMs = settings.timeoutMs * 2 + 10_000;
  const counters: SmsCounters = { sent: 0, retried: 0, failed: 0, expired: 0 };

  let stopping = false;
  let woken = false;
  let wakeUp: (() => void) | null = null;
  let pass = 0;
  let lastPrune = 0;
  const idleWaiters: { after: number; resolve: () => void }[] = [];

  const wake = () => {
    woken = true;
    wakeUp?.();
  };

  const pause = () =>
    new Promise<void>((resolve) => {
      if (woken || stopping) return resolve();
      const timer = setTimeout(done, pollMs);
      // A stopped server must be able to exit even if stop() was never called.
      timer.unref();
      function done() {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });

  const backoffMs = (attempt: number, hintMs: number | undefined) => {
    const full = Math.min(maxBackoffMs, settings.retryBaseMs * 2 ** (attempt - 1));
    const jittered = full / 2 + random() * (full / 2);
    return Math.min(maxBackoffMs, Math.max(jittered, hintMs ?? 0));
  };

  const countsField = () => ({ counts: { ...counters } });

  // The outcome must be recorded: a short wait and another try when the database hiccups,
  // since a message left "sending" will later be settled as "unknown".
  async function record(m: ClaimedMessage, outcome: SmsOutcome): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        await deps.record(m, outcome);
        return;
      } catch (err) {
        if (err instanceof OutboxClaimLost || i >= 3) {
          log.error("sms outcome not recorded", { id: m.id, outcome: outcome.status, error: String(err) });
          return;
        }
        await new Promise((r) => setTimeout(r, 500 * i));
      }
    }
  }

  async function fail(m: ClaimedMessage, outcome: SmsOutcome & { status: "failed" | "expired" }) {
    await record(m, outcome);
    if (outcome.status === "expired") counters.expired++;
    else counters.failed++;
    log.warn(outcome.status === "expired" ? "sms expired before sending" : "sms failed", {
      id: m.id,
      type: m.type,
      attempt: m.attempt,
      reason: outcome.reason,
      detail: outcome.detail,
      ...countsField(),
    });
  }

  async function handle(m: ClaimedMessage): Promise<void> {
    if (m.abandoned)
      return fail(m, {
        status: "failed",
        reason: "unknown",
        detail: "an attempt was cut off before its outcome was recorded; not repeated",
      });
    const now = clock.now();
    if (m.expiresAt && m.expiresAt <= now)
      return fail(m, { status: "expired", reason: "expired", detail: "expired before it could be sent" });
    let text: string;
    try {
      text = openText(settings.outboxKey, m.id, m.sealedText);
    } catch {
      return fail(m, {
        status: "failed",
        reason: "unreadable",
        detail: "the stored text does not open with the configured LATCHKEY_SMS_OUTBOX_KEY",
      });
    }
    let result: { providerMessageId: string | null };
    try {
      result = await sender.send({
        id: m.id,
        to: m.to,
        text,
        type: m.type,
        language: m.language,
        expiresAt: m.expiresAt,
      });
    } catch (err) {
      const e = err instanceof SmsDeliveryError ? err : new SmsDeliveryError("unknown", String(err));
      if (e.outcome === "transient" && m.attempt < settings.maxAttempts) {
        const delay = backoffMs(m.attempt, e.retryAfterMs);
        const held = await store
          .retryOutbox(instanceId, m.id, m.claim, new Date(clock.now().getTime() + delay), e.message)
          .catch((failure) => {
            log.error("sms retry not recorded", { id: m.id, error: String(failure) });
            return false;
          });
        if (held) {
          counters.retried++;
          // Retries sooner than the next poll are not kept waiting for it.
          if (delay < pollMs) setTimeout(wake, delay).unref();
        }
        log.warn("sms attempt failed; will retry", {
          id: m.id,
          type: m.type,
          attempt: m.attempt,
          detail: e.message,
          retryInMs: Math.round(delay),
          ...countsField(),
        });
        return;
      }
      const reason = e.outcome === "permanent" ? "rejected" : e.outcome === "unknown" ? "unknown" : "gave_up";
      return fail(m, { status: "failed", reason, detail: e.message });
    }
    await record(m, { status: "sent", provider: sender.name, providerMessageId: result.providerMessageId });
    counters.sent++;
    log.info("sms sent", {
      id: m.id,
      type: m.type,
      attempt: m.attempt,
      provider: sender.name,
      ...countsField(),
    });
  }

  async function prune(now: Date): Promise<void> {
    if (now.getTime() - lastPrune < pruneEveryMs) return;
    lastPrune = now.getTime();
    await store
      .pruneOutbox(
        instanceId,
        new Date(now.getTime() - keepSettledMs),
        new Date(now.getTime() - keepCountsMs),
      )
      .catch((err) => log.warn("sms outbox pruning failed", { error: String(err) }));
  }

  // Where the next look starts (undefined: a sweep, from the oldest message). On PostgreSQL a
  // settled message leaves dead entries at the old end of the outbox's index until VACUUM, and a
  // look from the oldest message walks all of them (docs/benchmarks.md, 16); so a look starts
  // where the previous one left off, less `lateCommitMs` for appends that commit after others
  // written later. A sweep still runs at least every poll, and before the worker counts as idle,
  // for what a look that starts later cannot see: a message whose append committed later still,
  // another node's message under a clock behind this one's, an abandoned claim.
  let dueFrom: Date | undefined;
  let lastSweep = Number.NEGATIVE_INFINITY;
  const nextDueFrom = (now: Date, claimed: readonly ClaimedMessage[], room: number): Date => {
    // A full claim may have left due messages behind its last one, a backlog older than `now`
    // (whatever a claim returns was due by `now`).
    const upTo = claimed.length < room ? now.getTime() : Math.max(...claimed.map((m) => m.dueAt.getTime()));
    return new Date(upTo - lateCommitMs);
  };

  // Messages on their way. Once at least half the room is free the loop claims more, rather than
  // when all of them are done: a provider call that hangs until its timeout holds up no other
  // message, and under load claims stay about as large as whole rounds (docs/benchmarks.md, 14).
  // A look that finds nothing due waits for a wake, and counts as idle only once nothing is on
  // its way either.
  const handling = new Set<Promise<void>>();
  const loop = (async () => {
    while (!stopping) {
      woken = false;
      const room = settings.concurrency - handling.size;
      if (room < Math.ceil(settings.concurrency / 2) && handling.size > 0) {
        await Promise.race(handling);
        continue;
      }
      const thisPass = ++pass;
      const now = clock.now();
      const sweep = dueFrom === undefined || performance.now() - lastSweep >= pollMs;
      if (sweep) lastSweep = performance.now();
      let claimed: ClaimedMessage[];
      try {
        claimed = await store.claimOutbox(instanceId, {
          now,
          staleBefore: new Date(now.getTime() - inFlightMs),
          limit: room,
          dueFrom: sweep ? undefined : dueFrom,
        });
      } catch (err) {
        log.warn("sms outbox not reachable; will look again", { error: String(err) });
        await pause();
        continue;
      }
      dueFrom = nextDueFrom(now, claimed, room);
      if (claimed.length === 0 && handling.size === 0 && !sweep) {
        dueFrom = undefined;
        continue;
      }
      if (claimed.length > 0) {
        for (const m of claimed) {
          const p: Promise<void> = handle(m)
            .catch((err) => log.error("sms handling failed", { id: m.id, error: String(err) }))
            .finally(() => {
              handling.delete(p);
              if (handling.size === 0 && idleWaiters.length > 0) wake();
            });
          handling.add(p);
        }
        continue;
      }
      if (handling.size > 0) {
        await pause();
        continue;
      }
      for (let i = idleWaiters.length - 1; i >= 0; i--) {
        const w = idleWaiters[i]!;
        if (thisPass > w.after) {
          idleWaiters.splice(i, 1);
          w.resolve();
        }
      }
      await prune(now);
      await pause();
    }
  })();

  return {
    wake,
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push({ after: pass, resolve });
        wake();
      });
    },
    counters: () => ({ ...counters }),
    async stop() {
      stopping = true;
      wake();
      await loop;
      await Promise.all(handling);
      for (const w of idleWaiters.splice(0)) w.resolve();
    },
  };
}
