/** The bounds of the gateway's own background calls (the judge's and the shadow's). */

/** The UTC day of an epoch-ms time, e.g. `2025-01-31`. */
export function utcDay(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

/** Dollars spent per UTC day against a daily budget; the count starts again at 0 each UTC day. */
export class DailySpend {
  private day = '';
  private dollars = 0;

  constructor(
    readonly budgetUsd: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Dollars spent today. */
  today(): number {
    this.roll();
    return this.dollars;
  }

  /** Whether today's budget is spent. */
  exhausted(): boolean {
    return this.today() >= this.budgetUsd;
  }

  add(usd: number | null): void {
    this.roll();
    if (usd !== null && usd > 0) this.dollars += usd;
  }

  private roll(): void {
    const day = utcDay(this.now());
    if (day !== this.day) {
      this.day = day;
      this.dollars = 0;
    }
  }
}

/** At most `limit` events in any 60 seconds. */
export class MinuteWindow {
  private readonly times: number[] = [];

  constructor(
    readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether an event may happen now (nothing is counted). */
  open(): boolean {
    this.expire(this.now());
    return this.times.length < this.limit;
  }

  /** Counts an event now if the window has room; false when it has none. */
  take(): boolean {
    const now = this.now();
    this.expire(now);
    if (this.times.length >= this.limit) return false;
    this.times.push(now);
    return true;
  }

  private expire(now: number): void {
    while (this.times.length > 0 && this.times[0]! <= now - 60_000) this.times.shift();
  }
}
