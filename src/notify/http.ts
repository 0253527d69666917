import http from "node:http";
import https from "node:https";
import { SmsDeliveryError } from "../app/ports.ts";

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly retryAfterMs: number | undefined;
}

const maxAnswerBytes = 64 * 1024;

// Retry-After as seconds or as an HTTP date.
function retryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// One POST to a provider. A failure says whether the request may have reached it: before a
// connection exists nothing was sent (transient, safe to try again); once one exists the
// provider may have the message, so the outcome is unknown and it must not be sent again.
// A fresh connection per request keeps that line sharp.
export function post(
  url: string,
  headers: Readonly<Record<string, string>>,
  body: string,
  timeoutMs: number,
): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  return new Promise((resolve, reject) => {
    let reached = false;
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const req = (secure ? https : http).request(
      target,
      {
        method: "POST",
        agent: false,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const answer = () => ({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          retryAfterMs: retryAfter(res.headers["retry-after"], Date.now()),
        });
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size <= maxAnswerBytes) chunks.push(c);
        });
        // The status is the provider's answer; a body cut short does not change it.
        res.on("end", () => finish(() => resolve(answer())));
        res.on("error", () => finish(() => resolve(answer())));
      },
    );
    req.on("socket", (socket) => {
      if (!socket.connecting) reached = true;
      else
        socket.once(secure ? "secureConnect" : "connect", () => {
          reached = true;
        });
    });
    req.on("error", (err) =>
      finish(() =>
        reject(
          reached
            ? new SmsDeliveryError("unknown", `connection failed after the request was sent (${err.message})`)
            : new SmsDeliveryError("transient", `could not connect (${err.message})`),
        ),
      ),
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.end(body);
  });
}

// The HTTP status as a delivery outcome: 2xx accepted; 408, 429 and 5xx mean the provider did
// not take the message now (try again later); any other status is a refusal.
export function failureOf(answer: HttpAnswer, detail = ""): SmsDeliveryError | null {
  const { status } = answer;
  if (status >= 200 && status < 300) return null;
  const what = `HTTP ${status}${detail}`;
  if (status === 408 || status === 429 || status >= 500)
    return new SmsDeliveryError("transient", what, answer.retryAfterMs);
  return new SmsDeliveryError("permanent", what);
}
