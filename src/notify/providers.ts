import type { Logger } from "../app/deps.ts";
import type { SmsSender } from "../app/ports.ts";
import type { SmsConfig } from "../config.ts";
import { logSmsSender } from "./log-sender.ts";
import { twilioSender } from "./twilio-sender.ts";
import { webhookSender } from "./webhook-sender.ts";

// The provider the configuration names.
export function smsSenderFor(config: SmsConfig, log: Logger): SmsSender {
  const p = config.provider;
  switch (p.kind) {
    case "log":
      return logSmsSender(log);
    case "webhook":
      return webhookSender({ url: p.url, secret: p.secret, timeoutMs: config.timeoutMs });
    case "twilio":
      return twilioSender({ ...p, timeoutMs: config.timeoutMs });
  }
}
