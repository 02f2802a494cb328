const NO_CAP = (): void => {};

/**
 * Requests in flight per caller, against a cap: a slot is taken as a request is admitted and given
 * back once, when its answer ends. In memory, so each gateway process counts its own.
 */
export class ConcurrencyCaps {
  private readonly inflight = new Map<string, number>();

  /** A slot for `caller` under `cap` (0 = no cap): its release function, or null when the caller is full. */
  acquire(caller: string, cap: number): (() => void) | null {
    if (cap <= 0) return NO_CAP;
    const now = this.inflight.get(caller) ?? 0;
    if (now >= cap) return null;
    this.inflight.set(caller, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inflight.get(caller) ?? 1) - 1;
      if (left <= 0) this.inflight.delete(caller);
      else this.inflight.set(caller, left);
    };
  }

  /** Requests `caller` has in flight (counted only under a cap). */
  count(caller: string): number {
    return this.inflight.get(caller) ?? 0;
  }
}
