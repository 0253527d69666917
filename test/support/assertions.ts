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
