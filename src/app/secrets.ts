import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  randomInt,
  timingSafeEqual,
} from "node:crypto";

// Bearer tokens carry 256 random bits, so one fast hash is enough to store them safely.
export const newToken = () => randomBytes(32).toString("base64url");
export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

// Compares a presented token with a stored hash without leaking, through timing, how much matched.
export function tokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(token), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

// A session token names its session, so that one lookup by key finds what to compare it with;
// PATs are plain base64url and never contain the dot.
export const newSessionToken = (sessionId: string) => `${sessionId}.${newToken()}`;

export function sessionIdOfToken(token: string): string | null {
  const dot = token.indexOf(".");
  return dot > 0 ? token.slice(0, dot) : null;
}

const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

// Short codes a person types: uppercase letters and digits without look-alikes (0/O, 1/I).
export function newCode(length = 6, alphabet = codeAlphabet): string {
  let code = "";
  for (let i = 0; i < length; i++) code += alphabet[randomInt(alphabet.length)];
  return code;
}

// Codes are stored salted and hashed; verification compares in constant time.
export function hashCode(code: string): string {
  const salt = randomBytes(16).toString("hex");
  return `${salt}:${digest(salt, code)}`;
}

export function codeMatches(code: string, stored: string): boolean {
  const [salt, expected] = stored.split(":");
  if (!salt || !expected) return false;
  const a = Buffer.from(digest(salt, code.trim().toUpperCase()), "hex");
  const b = Buffer.from(expected, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

const digest = (salt: string, code: string) =>
  createHash("sha256").update(salt).update(code.toUpperCase()).digest("hex");

// Outbox texts may carry a code and must be readable again after a restart, so they are
// encrypted rather than hashed: AES-256-GCM with the configured key, the message id as
// associated data (a sealed text moved to another row does not open). Without a key they
// are stored as they are, marked so.
export function sealText(key: Buffer | null, id: string, text: string): string {
  if (!key) return `plain:${text}`;
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(id));
  const sealed = Buffer.concat([iv, cipher.update(text, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `v1:${sealed.toString("base64url")}`;
}

// Throws when the text was sealed with another key (or none is configured) or was altered.
export function openText(key: Buffer | null, id: string, sealed: string): string {
  if (sealed.startsWith("plain:")) return sealed.slice("plain:".length);
  if (!sealed.startsWith("v1:") || !key) throw new Error("sealed text cannot be opened without its key");
  const raw = Buffer.from(sealed.slice(3), "base64url");
  if (raw.length < 28) throw new Error("sealed text is truncated");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(id));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(
    "utf8",
  );
}
