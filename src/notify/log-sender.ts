import type { Logger } from "../app/deps.ts";
import type { SmsSender } from "../app/ports.ts";

// The development sender: instead of an SMS, a log line a developer can read the code from.
export function logSmsSender(log: Logger): SmsSender {
  return {
    async send(message) {
      log.info("development SMS (not sent)", { to: message.to, type: message.type, text: message.text });
    },
  };
}
