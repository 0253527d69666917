import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../domain/permissions.ts";

// Set by authentication before any handler runs; a handler never sees an anonymous call.
export const principalKey = createContextKey<Principal | null>(null, { description: "authenticated caller" });

export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (!p) throw new Error("handler reached without an authenticated caller");
  return p;
}
