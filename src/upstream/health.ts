export interface CircuitOptions {
  /** Consecutive failures (unreachable, timeout, 429, 5xx, malformed) that open the circuit. */
  failures: number;
  /** How long an open circuit keeps the model out of routing; doubles on each re-open, up to 16×. */
  cooldownMs: number;
}

interface ModelHealth {
  consecutiveFailures: number;
  openUntil: number;
  /** How many times in a row the circuit opened (resets on a success). */
  opens: number;
}

/**
 * A circuit breaker per upstream model. A model that keeps failing is taken out of routing for a
 * cooldown, so traffic leaves it within a few requests instead of waiting for the learned
 * statistics to fade; after the cooldown one request probes it again. Pinned requests ignore it.
 */
export class UpstreamHealth {
  private readonly models = new Map<string, ModelHealth>();

  constructor(private readonly options: CircuitOptions) {}

  isAvailable(model: string, now = Date.now()): boolean {
    const h = this.models.get(model);
    return h === undefined || h.openUntil <= now;
  }

  /** Milliseconds left in the model's cooldown (0 when it is routable). */
  cooldownLeft(model: string, now = Date.now()): number {
    const h = this.models.get(model);
    return h === undefined ? 0 : Math.max(0, h.openUntil - now);
  }

  success(model: string): void {
    const h = this.models.get(model);
    if (h) {
      h.consecutiveFailures = 0;
      h.opens = 0;
    }
  }

  /**
   * The model cannot be used now whatever is sent (its provider key was refused): its circuit opens
   * at once, for the cooldown of its next opening (doubling as `failure` does).
   */
  unavailable(model: string, now = Date.now()): void {
    if (this.options.failures <= 0) return;
    const h = this.models.get(model) ?? { consecutiveFailures: 0, openUntil: 0, opens: 0 };
    this.models.set(model, h);
    h.openUntil = now + this.options.cooldownMs * 2 ** Math.min(h.opens, 4);
    h.opens += 1;
    h.consecutiveFailures = 0;
  }

  failure(model: string, now = Date.now()): void {
    if (this.options.failures <= 0) return;
    let h = this.models.get(model);
    if (!h) {
      h = { consecutiveFailures: 0, openUntil: 0, opens: 0 };
      this.models.set(model, h);
    }
    h.consecutiveFailures += 1;
    // A failed probe after a cooldown re-opens at once.
    const probing = h.opens > 0 && h.openUntil <= now;
    if (h.consecutiveFailures >= this.options.failures || probing) {
      h.openUntil = now + this.options.cooldownMs * 2 ** Math.min(h.opens, 4);
      h.opens += 1;
      h.consecutiveFailures = 0;
    }
  }
}
