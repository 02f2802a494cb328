import type { Services } from './services.js';

/**
 * Routed models (`routed` not false) not tried yet for this request, without those in a cooldown
 * (unless that leaves none) and those at their concurrency limit (unless that leaves none: the
 * request then waits on a full model's pool rather than failing).
 */
export function routableModels(gw: Pick<Services, 'health' | 'routedKeys' | 'upstreams'>, tried: readonly string[]): string[] {
  const untried = gw.routedKeys.filter((k) => !tried.includes(k));
  const now = Date.now();
  const healthy = untried.filter((k) => gw.health.isAvailable(k, now) && gw.upstreams.get(k)!.hasCapacity());
  if (healthy.length > 0) return healthy;
  const open = untried.filter((k) => gw.upstreams.get(k)!.hasCapacity());
  return open.length > 0 ? open : untried;
}
