import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";

// The call fails with this code and, when given, ZITADEL's error id in the message suffix and
// in the zitadel.v1.ErrorDetail.
export async function expectCode(p: Promise<unknown>, code: Code, id?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], e.message);
    if (id) {
      const [detail] = e.findDetails(ErrorDetailSchema);
      assert.equal(detail?.id, id);
      assert.match(e.rawMessage, new RegExp(`\\(${id}\\)$`));
    }
    return true;
  });
}

// Polls until `check` returns something other than undefined/false (and returns it), for
// outcomes that arrive asynchronously; fails after a generous deadline, never on timing.
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
