import type { SmsSender } from "../app/ports.ts";
import { failureOf, post } from "./http.ts";

export interface TwilioSettings {
  readonly accountSid: string;
  readonly authToken: string;
  // A sender number, or a messaging service SID (MG...) that picks one.
  readonly from: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
}

// Twilio's Messages API. It takes no idempotency key, which is why the outbox never repeats an
// attempt that may have reached it.
export function twilioSender(s: TwilioSettings): SmsSender {
  const url = `${s.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(s.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${s.accountSid}:${s.authToken}`).toString("base64")}`;
  const sender = s.from.startsWith("MG") ? "MessagingServiceSid" : "From";
  return {
    name: "twilio",
    async send(m) {
      const form = new URLSearchParams({ To: m.to, [sender]: s.from, Body: m.text });
      const answer = await post(
        url,
        {
          authorization,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          "user-agent": "latchkey",
        },
        form.toString(),
        s.timeoutMs,
      );
      let json: { sid?: unknown; code?: unknown } = {};
      try {
        json = JSON.parse(answer.body) as typeof json;
      } catch {
        // Not JSON (a proxy's error page): the status says enough.
      }
      // Twilio's error code names the reason (21211: invalid To number) without quoting the message.
      const failure = failureOf(answer, typeof json.code === "number" ? `, Twilio error ${json.code}` : "");
      if (failure) throw failure;
      return { providerMessageId: typeof json.sid === "string" ? json.sid : null };
    },
  };
}
