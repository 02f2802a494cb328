import type { Services } from './services.js';
import type { Endpoint } from '../traces/trace-columns.js';

/**
 * Routed models (`routed` not false) that serve `endpoint` and were not tried yet for this request, without those in a cooldown
 * (unless that leaves none), those at their concurrency limit (unless that leaves none: the request
 * then waits on a full model's pool rather than failing), and those known to refuse a request of
 * `requestBytes` as too big (unless that leaves none: a limit may have been raised).
 */
export function routableModels(
  gw: Pick<Services, 'health' | 'routedFor' | 'upstreams' | 'sizeLimits'>,
  endpoint: Endpoint,
  tried: readonly string[],
  requestBytes?: number,
): string[] {
  let untried = gw.routedFor(endpoint).filter((k) => !tried.includes(k));
  const now = Date.now();
  if (requestBytes !== undefined && !gw.sizeLimits.empty) {
    const fitting = untried.filter((k) => gw.sizeLimits.fits(k, requestBytes, now));
    if (fitting.length > 0) untried = fitting;
  }
  const healthy = untried.filter((k) => gw.health.isAvailable(k, now) && gw.upstreams.get(k)!.hasCapacity());
  if (healthy.length > 0) return healthy;
  const open = untried.filter((k) => gw.upstreams.get(k)!.hasCapacity());
  return open.length > 0 ? open : untried;
}
