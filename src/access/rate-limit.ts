interface Bucket {
  tokens: number;
  updated: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until a request would be allowed (when refused). */
  retryAfterSeconds: number;
}

function refused(bucket: Bucket, perMinute: number): RateDecision {
  const ratePerMs = perMinute / 60_000;
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000)) };
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
    const bucket = this.refilled(caller, perMinute, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return refused(bucket, perMinute);
  }

  /** What `take` would decide, without taking a token. */
  peek(caller: string, perMinute: number, now = Date.now()): RateDecision {
    if (perMinute <= 0) return { allowed: true, retryAfterSeconds: 0 };
    const bucket = this.buckets.get(caller);
    if (!bucket) return { allowed: true, retryAfterSeconds: 0 };
    const tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * (perMinute / 60_000));
    return tokens >= 1 ? { allowed: true, retryAfterSeconds: 0 } : refused({ tokens, updated: now }, perMinute);
  }

  private refilled(caller: string, perMinute: number, now: number): Bucket {
    let bucket = this.buckets.get(caller);
    if (!bucket) {
      bucket = { tokens: perMinute, updated: now };
      this.buckets.set(caller, bucket);
    } else {
      bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * (perMinute / 60_000));
      bucket.updated = now;
    }
    if (++this.sweeps % 10_000 === 0) this.sweep(now);
    return bucket;
  }

  /** Forgets callers idle for over a minute (their buckets are full again anyway). */
  private sweep(now: number): void {
    for (const [caller, bucket] of this.buckets) if (now - bucket.updated > 60_000) this.buckets.delete(caller);
  }
}
