import { Hono } from 'hono';
import type { Gateway } from '../gateway.js';
import { chatCompletions, requestIdOf } from './chat-completions.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { errors, GatewayError } from './errors.js';
import { adminGuard, clientGuard, type GatewayEnv } from './guard.js';
import { postFeedback } from './feedback.js';
import { health } from './health.js';
import { getMetrics } from './metrics.js';
import { getModel, listModels } from './models.js';
import { getStats } from './stats.js';
import { StoreUnavailableError } from '../traces/types.js';

/** The gateway's HTTP surface. Every error leaves in OpenAI's shape. */
export function createApp(gw: Gateway) {
  const app = new Hono<GatewayEnv>();

  const client = clientGuard(gw);
  const admin = adminGuard(gw);
  app.use('/v1/*', client);
  app.use('/feedback', client);
  app.use('/stats', admin);
  app.use('/metrics', admin);
  app.use('/dashboard/data', admin);

  app.post('/v1/chat/completions', chatCompletions(gw));
  app.get('/v1/models', listModels(gw));
  app.get('/v1/models/:id{.+}', getModel(gw));
  app.post('/feedback', postFeedback(gw));
  app.get('/stats', getStats(gw));
  app.get('/health', health(gw));
  app.route('/dashboard', dashboardRoutes(gw));
  app.get('/metrics', getMetrics(gw));

  for (const path of ['/v1/chat/completions', '/v1/models', '/feedback', '/stats', '/health', '/metrics']) {
    app.all(path, (c) => {
      throw errors.methodNotAllowed(c.req.method, path);
    });
  }

  app.notFound((c) => {
    const err = errors.routeNotFound(c.req.method, c.req.path);
    return c.json(err.toBody(), 404);
  });

  app.onError((err, c) => {
    const requestId = c.res.headers.get('x-request-id') ?? requestIdOf(c.env?.incoming?.headers ?? {});
    c.header('x-request-id', requestId);
    if (err instanceof GatewayError) return c.json(err.toBody(), err.status as 400);
    if (err instanceof StoreUnavailableError) {
      // A shared database that is away (chat requests are still answered; reads and some feedback wait for it).
      c.header('retry-after', '5');
      gw.logger.warn({ error: err.message, requestId }, 'trace store unavailable');
      return c.json(new GatewayError(503, 'api_error', 'The trace store is unavailable; try again shortly', 'store_unavailable').toBody(), 503);
    }
    gw.logger.error({ err, requestId }, 'unhandled error');
    const internal = errors.internal();
    return c.json(internal.toBody(), 500);
  });

  return app;
}
