import { QuotaExceeded, type SendQuota } from "../app/ports.ts";

// Both adapters count the same way. `uses` are the times counted under the quota's key
// within its window, oldest first. When they reach the limit, the retry hint is the moment
// enough of them have left the window for one more to fit (at least a second).
export function quotaRefusal(quota: SendQuota, uses: readonly Date[], now: Date): QuotaExceeded | null {
  if (uses.length < quota.limit) return null;
  const freeing = uses[uses.length - quota.limit];
  const retryAfterMs = freeing ? freeing.getTime() + quota.windowMs - now.getTime() : quota.windowMs;
  return new QuotaExceeded(quota.key, Math.max(1000, retryAfterMs));
}
