import type { Context } from 'hono';
import type { Gateway } from '../gateway.js';

export function health(gw: Gateway) {
  return async function handleHealth(c: Context) {
    try {
      await gw.store.ping();
      return c.json({ status: 'ok', policy: gw.policy.name, models: gw.modelKeys.length });
    } catch (err) {
      return c.json({ status: 'unavailable', error: (err as Error).message }, 503);
    }
  };
}
