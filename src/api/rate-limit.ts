// A token bucket per caller: `burst` writes at once, refilled at `perMinute`. Returns 0 when the
// write may go ahead, else the whole seconds after which one will.
export interface WriteLimiter {
  take(caller: string): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

// Buckets of callers who have been quiet long enough are full again and carry no information;
// they are dropped once the map grows past this, so that memory stays bounded.
const sweepAbove = 10_000;

export function writeLimiter(perMinute: number, burst: number, now: () => number = Date.now): WriteLimiter {
  if (perMinute === 0) return { take: () => 0 };
  const perMs = perMinute / 60_000;
  const buckets = new Map<string, Bucket>();
  const refill = (b: Bucket, t: number) => {
    b.tokens = Math.min(burst, b.tokens + (t - b.at) * perMs);
    b.at = t;
  };
  return {
    take(caller) {
      const t = now();
      if (buckets.size > sweepAbove) {
        for (const [k, b] of buckets) {
          refill(b, t);
          if (b.tokens >= burst) buckets.delete(k);
        }
      }
      let b = buckets.get(caller);
      if (!b) {
        b = { tokens: burst, at: t };
        buckets.set(caller, b);
      }
      refill(b, t);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
    },
  };
}
