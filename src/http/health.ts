import type { Context } from 'hono';
import type { Services } from '../pipeline/services.js';

/**
 * GET /health: `ok`; `degraded` (still 200: requests are answered, their traces wait in the local
 * spool) while a shared database cannot be reached or the spool is being written back to it;
 * `unavailable` (503) when the store cannot be used at all.
 */
export function health(gw: Pick<Services, 'config' | 'modelKeys' | 'policy' | 'store'>) {
  return async function handleHealth(c: Context) {
    try {
      const store = await gw.store.health();
      const body = { status: store.status, policy: gw.policy.name, models: gw.modelKeys.length, instance: gw.config.instanceId };
      if (store.status === 'ok') return c.json(body);
      return c.json({ ...body, spool_depth: store.spoolDepth, error: store.error ?? null });
    } catch (err) {
      return c.json({ status: 'unavailable', error: (err as Error).message }, 503);
    }
  };
}
