import { createHmac } from "node:crypto";
import type { SmsSender } from "../app/ports.ts";
import { failureOf, post } from "./http.ts";

export interface WebhookSettings {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
}

// Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">. The time is
// signed with the body, so a receiver can refuse a replayed request by its age.
export function webhookSignature(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

// POSTs each message as JSON to the operator's endpoint. `id` is the same on every attempt
// and is sent as Idempotency-Key too, so a receiver can also drop repeats on its side.
export function webhookSender(s: WebhookSettings, now: () => Date = () => new Date()): SmsSender {
  return {
    name: "webhook",
    async send(m) {
      const body = JSON.stringify({
        id: m.id,
        to: m.to,
        text: m.text,
        type: m.type,
        language: m.language,
        expiresAt: m.expiresAt?.toISOString() ?? null,
      });
      const t = Math.floor(now().getTime() / 1000);
      const answer = await post(
        s.url,
        {
          "content-type": "application/json",
          "user-agent": "latchkey",
          "idempotency-key": m.id,
          "latchkey-signature": webhookSignature(s.secret, t, body),
        },
        body,
        s.timeoutMs,
      );
      const failure = failureOf(answer);
      if (failure) throw failure;
      return { providerMessageId: null };
    },
  };
}
