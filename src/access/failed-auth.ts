import { RateLimiter, type RateDecision } from './rate-limit.js';

/**
 * Wrong keys per client address: each address may get `perMinute` keys wrong in a burst, refilled
 * evenly; past that it is refused before any key check until its allowance refills, so keys cannot
 * be guessed at speed. In memory, per process (0 = off).
 */
export class FailedAuthThrottle {
  private readonly buckets = new RateLimiter();

  constructor(private readonly perMinute: number) {}

  /** Whether `address` may have a key checked now (it has wrong keys left). */
  check(address: string, now = Date.now()): RateDecision {
    return this.buckets.peek(address, this.perMinute, now);
  }

  /** `address` sent a wrong key. */
  failed(address: string, now = Date.now()): void {
    this.buckets.take(address, this.perMinute, now);
  }
}
