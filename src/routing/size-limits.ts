/**
 * What each model is known not to take: the smallest request (body bytes) it refused as too big for
 * its context window (`context_length_exceeded`, a 413, a 400 naming the context window). Routing
 * leaves a model out of a request at least that big, so a long prompt goes straight to a model that
 * can take it instead of failing over every time. It is a capacity limit, not a quality failure.
 *
 * Learned per gateway, in memory: after a restart the first refusal teaches it again (it costs one
 * quick failover). A limit is forgotten after `memoryMs` (a provider may raise it), and when the model
 * answers a request at least that big (a request's bytes say only roughly how many tokens it holds).
 * A refusal of a request under MIN_LEARNED_BYTES teaches nothing: no model's window is that small, so
 * it was about something else (OpenAI words a `max_tokens` past the window the same way).
 */
export class SizeLimits {
  private readonly refused = new Map<string, { bytes: number; at: number }>();

  constructor(private readonly memoryMs = DEFAULT_SIZE_MEMORY_MS) {}

  /** `model` refused a request of `bytes` as too big. */
  tooBig(model: string, bytes: number, now = Date.now()): void {
    if (bytes < MIN_LEARNED_BYTES) return;
    const known = this.limit(model, now);
    if (known === undefined || bytes < known) this.refused.set(model, { bytes, at: now });
  }

  /** `model` answered a request of `bytes`: a known limit at or below it was wrong (or was raised). */
  answered(model: string, bytes: number): void {
    const known = this.refused.get(model);
    if (known !== undefined && bytes >= known.bytes) this.refused.delete(model);
  }

  /** Whether a request of `bytes` may fit `model` (no refusal of one as big or smaller is remembered). */
  fits(model: string, bytes: number, now = Date.now()): boolean {
    const limit = this.limit(model, now);
    return limit === undefined || bytes < limit;
  }

  /** The smallest request `model` refused (bytes), while remembered. */
  limit(model: string, now = Date.now()): number | undefined {
    const known = this.refused.get(model);
    if (known === undefined) return undefined;
    if (now - known.at >= this.memoryMs) {
      this.refused.delete(model);
      return undefined;
    }
    return known.bytes;
  }

  /** Whether no limit is remembered (routing then has nothing to filter). */
  get empty(): boolean {
    return this.refused.size === 0;
  }

  /** The limits remembered now, by model (for /stats). */
  snapshot(now = Date.now()): Record<string, number> {
    const out: Record<string, number> = {};
    for (const model of [...this.refused.keys()]) {
      const limit = this.limit(model, now);
      if (limit !== undefined) out[model] = limit;
    }
    return out;
  }
}

/** How long a learned size limit is kept: an hour (then one request may find out again). */
export const DEFAULT_SIZE_MEMORY_MS = 60 * 60 * 1000;
/** The smallest refused request a limit is learned from: 8 KiB, some 2,000 tokens of text. */
export const MIN_LEARNED_BYTES = 8 * 1024;
