import type { Context } from 'hono';
import type { Services } from '../pipeline/services.js';

/** GET /metrics: Prometheus text format, from the gateway's own registry. */
export function getMetrics(gw: Pick<Services, 'metrics'>) {
  return async function handleMetrics(c: Context) {
    const body = await gw.metrics.render();
    return c.body(body, 200, { 'content-type': gw.metrics.contentType });
  };
}
