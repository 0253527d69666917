// What the log says when calls fail because the database is away: why, once, and then a
// count every interval rather than a line per call.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { toConnectError } from "../src/api/errors.ts";
import { StoreUnavailable } from "../src/app/ports.ts";
import { jsonLogger } from "../src/log.ts";
import { errorReporter, unavailableLogIntervalMs } from "../src/server/error-reporter.ts";

function logged() {
  const lines: Record<string, unknown>[] = [];
  const log = jsonLogger("info", (line) => lines.push(JSON.parse(line)));
  return { log, lines };
}

const refused = () =>
  new StoreUnavailable("PostgreSQL is unreachable", {
    cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
  });

describe("the log of Unavailable answers", () => {
  it("says why the first call failed, with the driver's words and code, and answers Unavailable", () => {
    const { log, lines } = logged();
    const answer = toConnectError(
      refused(),
      errorReporter(log, () => 0),
    );
    assert.equal(answer.code, Code.Unavailable);
    assert.doesNotMatch(
      answer.rawMessage,
      /ECONNREFUSED|5432/,
      "the caller is not told the database's address",
    );
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, "warn");
    assert.equal(lines[0]?.msg, "database unavailable; answered Unavailable");
    assert.equal(lines[0]?.error, "PostgreSQL is unreachable");
    assert.equal(lines[0]?.cause, "connect ECONNREFUSED 127.0.0.1:5432");
    assert.equal(lines[0]?.causeCode, "ECONNREFUSED");
    assert.equal(lines[0]?.alsoAnswered, 0);
  });

  it("writes at most one line an interval, counting the answers it did not log", () => {
    const { log, lines } = logged();
    let now = 1_000;
    const reporter = errorReporter(log, () => now);
    for (let i = 0; i < 500; i++) {
      toConnectError(refused(), reporter);
      now += 10;
    }
    // 500 answers over 5 s: the first is logged, the other 499 wait for the next line.
    assert.equal(lines.length, 1);
    now += unavailableLogIntervalMs;
    toConnectError(new StoreUnavailable("PostgreSQL did not answer within 2000 ms"), reporter);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.error, "PostgreSQL did not answer within 2000 ms");
    assert.equal(lines[1]?.cause, undefined, "no cause is made up where there was none");
    assert.equal(lines[1]?.alsoAnswered, 499);
  });

  it("leaves other failures to the unexpected-error line, with a reference", () => {
    const { log, lines } = logged();
    const answer = toConnectError(new Error("boom"), errorReporter(log));
    assert.equal(answer.code, Code.Internal);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, "error");
    assert.match(answer.rawMessage, new RegExp(String(lines[0]?.ref)));
  });
});
