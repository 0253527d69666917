import { randomUUID } from "node:crypto";
import type { ErrorReporter } from "../api/errors.ts";
import type { Logger } from "../app/deps.ts";

// An outage answers every call Unavailable, thousands a second under load: one line per answer
// would bury the log, and none would leave an operator guessing whether the database refused
// the connection, timed out or was too busy. So the first is logged with its cause, and then at
// most one line per interval, counting the answers it stands for.
export const unavailableLogIntervalMs = 10_000;

// The driver's own words and code for why the database could not be used (ECONNREFUSED,
// SQLSTATE 57014, ...). They name hosts and statements' fates, never values or credentials.
function causeOf(err: Error): { cause?: string; causeCode?: string } {
  const cause = err.cause;
  if (!(cause instanceof Error)) return {};
  const code = (cause as { code?: unknown }).code;
  return { cause: cause.message, ...(typeof code === "string" ? { causeCode: code } : {}) };
}

export function errorReporter(log: Logger, now: () => number = Date.now): ErrorReporter {
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
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
    unavailable(err) {
      const at = now();
      if (at - lastLoggedAt < unavailableLogIntervalMs) {
        unlogged++;
        return;
      }
      log.warn("database unavailable; answered Unavailable", {
        error: err.message,
        ...causeOf(err),
        // Answered Unavailable since the previous line without a line of their own.
        alsoAnswered: unlogged,
      });
      lastLoggedAt = at;
      unlogged = 0;
    },
  };
}
