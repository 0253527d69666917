import type { Logger } from "../app/deps.ts";
import type { SmsSender } from "../app/ports.ts";

// The development sender: instead of an SMS, a log line a developer can read the code from.
// The configuration refuses it when NODE_ENV=production.
export function logSmsSender(log: Logger): SmsSender {
  return {
    name: "log",
    async send(message) {
      log.info("development SMS (not sent)", {
        id: message.id,
        to: message.to,
        type: message.type,
        text: message.text,
      });
      return { providerMessageId: null };
    },
  };
}
