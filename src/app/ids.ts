import { randomBytes } from "node:crypto";

// Decimal ids like ZITADEL's: milliseconds since 2020 in the high bits keep them roughly in
// creation order; 22 random bits keep ids from several nodes apart without coordination.
const epoch = 1577836800000n;

export function newId(now = Date.now()): string {
  const random = BigInt(randomBytes(3).readUIntBE(0, 3) & 0x3fffff);
  return (((BigInt(now) - epoch) << 22n) | random).toString();
}
