import { randomBytes } from "node:crypto";

// Decimal ids like ZITADEL's: milliseconds since 2020 in the high bits keep them roughly in
// creation order; 22 random bits keep ids from several nodes apart without coordination.
const epoch = 1577836800000n;
const lowBits = 0x3fffff;

let lastMs = -1;
let lastLow = 0;

export function newId(now = Date.now()): string {
  // Within one millisecond this process counts on from its first draw, so it never repeats
  // itself however many ids it hands out; only another node can, rarely, draw the same one.
  lastLow = now === lastMs ? (lastLow + 1) & lowBits : randomBytes(3).readUIntBE(0, 3) & lowBits;
  lastMs = now;
  return (((BigInt(now) - epoch) << 22n) | BigInt(lastLow)).toString();
}
