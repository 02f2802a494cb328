import type { Context } from 'hono';
import type { Services } from '../pipeline/services.js';
import { statsJson } from '../reports/stats.js';
import { timeParam } from './admin-query.js';

/** GET /stats?since=&until= (epoch ms or ISO dates; anything else is a 400). */
export function getStats(gw: Pick<Services, 'health' | 'judge' | 'modelKeys' | 'policy' | 'shadow' | 'sizeLimits' | 'sticky' | 'store'>) {
  return async function handleStats(c: Context) {
    const range = { since: timeParam('since', c.req.query('since')), until: timeParam('until', c.req.query('until')) };
    const summary = await gw.store.stats(range);
    const now = Date.now();
    const cooldowns: Record<string, number> = {};
    for (const key of gw.modelKeys) cooldowns[key] = Math.ceil(gw.health.cooldownLeft(key, now) / 1000);
    const json = statsJson(summary, gw.policy.snapshot(), cooldowns);
    // The smallest request (bytes) each model refused as too big, while this instance remembers it.
    for (const [key, bytes] of Object.entries(gw.sizeLimits.snapshot(now))) {
      const model = json.models[key];
      if (model !== undefined) model.size_limit_bytes = bytes;
    }
    const body: Record<string, unknown> = { ...json };
    // This instance's judge, shadow and sticky turns since it started (`router.judge`, `router.shadow`, `router.sticky`).
    if (gw.judge !== null) body.judge = gw.judge.snapshot();
    if (gw.shadow !== null) body.shadow = gw.shadow.snapshot();
    if (gw.sticky !== null) body.sticky = gw.sticky.snapshot();
    return c.json(body);
  };
}
