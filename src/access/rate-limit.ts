interface Bucket {
  tokens: number;
  updated: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until a request would be allowed (when refused). */
  retryAfterSeconds: number;
}

/**
 * Requests per minute per caller, as token buckets (a burst of up to the per-minute figure, refilled
 * evenly). In memory, so each gateway process limits on its own.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweeps = 0;

  take(caller: string, perMinute: number, now = Date.now()): RateDecision {
    if (perMinute <= 0) return { allowed: true, retryAfterSeconds: 0 };
    const ratePerMs = perMinute / 60_000;
    let bucket = this.buckets.get(caller);
    if (!bucket) {
      bucket = { tokens: perMinute, updated: now };
      this.buckets.set(caller, bucket);
    } else {
      bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * ratePerMs);
      bucket.updated = now;
    }
    if (++this.sweeps % 10_000 === 0) this.sweep(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000)) };
  }

  /** Forgets callers idle for over a minute (their buckets are full again anyway). */
  private sweep(now: number): void {
    for (const [caller, bucket] of this.buckets) if (now - bucket.updated > 60_000) this.buckets.delete(caller);
  }
}
