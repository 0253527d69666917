import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";

// Bearer tokens carry 256 random bits, so one fast hash is enough to store them safely.
export const newToken = () => randomBytes(32).toString("base64url");
export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

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
