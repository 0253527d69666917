import { appendFileSync } from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";

// A JSON call over a kept-alive connection; anything but 200 is an error with the body in it.
export function jsonCall(
  agent: http.Agent,
  baseUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const u = new URL(baseUrl);
  const payload = body === undefined ? null : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${token}` };
    if (payload !== null) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    const req = http.request({ host: u.hostname, port: u.port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
        else resolve({ status: res.statusCode, text });
      });
    });
    req.on("error", reject);
    req.end(payload ?? undefined);
  });
}

export interface Prepared {
  readonly created: number;
  readonly seconds: number;
  readonly complete: boolean;
  // Calls that were refused as "User already exists" and made again.
  readonly collisions: number;
}

// Users with a verified phone, made through the API as any client would (AddHumanUser with
// phone.isVerified), several calls in flight so that 100,000 of them take minutes, not hours.
// Their ids are appended to usersFile as they come. Stops at the time box and says so.
export async function createUsers(o: {
  baseUrl: string;
  token: string;
  from: number;
  to: number;
  usersFile: string;
  concurrency: number;
  timeBoxSeconds: number;
  log: (line: string) => void;
}): Promise<Prepared> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const started = performance.now();
  const deadline = started + o.timeBoxSeconds * 1000;
  let next = o.from;
  let created = 0;
  let collisions = 0;
  let timedOut = false;
  let buffered: string[] = [];
  const flush = () => {
    if (buffered.length === 0) return;
    appendFileSync(o.usersFile, `${buffered.join("\n")}\n`);
    buffered = [];
  };
  const total = o.to - o.from;
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    o.log(
      `  users: ${created.toLocaleString("en")} / ${total.toLocaleString("en")} (${Math.round(created / s)}/s)`,
    );
  }, 5000);
  try {
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.to) {
          if (performance.now() > deadline) {
            timedOut = true;
            return;
          }
          const i = next++;
          const name = `bench-${i}`;
          const body = {
            username: name,
            profile: { givenName: "Bench", familyName: `User ${i}` },
            email: { email: `${name}@example.com`, isVerified: true },
            phone: { phone: "+41791234567", isVerified: true },
          };
          let res: { status: number; text: string };
          try {
            res = await jsonCall(agent, o.baseUrl, o.token, "POST", "/v2/users/human", body);
          } catch (err) {
            // The server picks the id, so "User already exists" for a fresh username can only be
            // two ids drawn alike: tried once more, and counted so that the report says so.
            if (!String(err).includes("User already exists")) throw err;
            collisions++;
            o.log(`  AddHumanUser for ${name} answered "User already exists": trying once more`);
            res = await jsonCall(agent, o.baseUrl, o.token, "POST", "/v2/users/human", body);
          }
          buffered.push((JSON.parse(res.text) as { userId: string }).userId);
          created++;
          if (buffered.length >= 1000) flush();
        }
      }),
    );
  } finally {
    clearInterval(progress);
    flush();
    agent.destroy();
  }
  return { created, seconds: (performance.now() - started) / 1000, complete: !timedOut, collisions };
}

// One AddOTPSMS + RemoveOTPSMS over REST: checks the path works before the load, tells the size
// of an answer (for C_http), and the sequence the user is at afterwards.
export async function probePair(
  baseUrl: string,
  token: string,
  userId: string,
): Promise<{ bodyBytes: number; sequence: number }> {
  const agent = new http.Agent({ keepAlive: false });
  try {
    const path = `/v2/users/${encodeURIComponent(userId)}/otp_sms`;
    const add = await jsonCall(agent, baseUrl, token, "POST", path, {});
    const remove = await jsonCall(agent, baseUrl, token, "DELETE", path);
    const sequence = Number((JSON.parse(remove.text) as { details: { sequence: string } }).details.sequence);
    return { bodyBytes: Buffer.byteLength(add.text), sequence };
  } finally {
    agent.destroy();
  }
}
