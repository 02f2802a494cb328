import { Hono } from 'hono';
import type { Services } from '../pipeline/services.js';
import { requestIdOf } from './api-admission.js';
import { errorAnswer } from './error-answer.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { errors } from '../core/errors.js';
import { browserCheck, browserGuard, jsonBodyGuard } from './browser-guard.js';
import { adminGuard, clientGuard, type GatewayEnv } from './guard.js';
import { closeAfterAnswer } from './read-body.js';
import { postFeedback } from './feedback.js';
import { health } from './health.js';
import { getMetrics } from './metrics.js';
import { getModel, listModels } from './models.js';
import { getStats } from './stats.js';

/** The gateway's HTTP surface. Every error leaves in OpenAI's shape. */
export function createApp(gw: Services) {
  const app = new Hono<GatewayEnv>();

  const checkBrowser = browserCheck(gw.config, !gw.keys.requiresClientKey);
  if (checkBrowser !== null) {
    app.use('*', browserGuard(checkBrowser));
    app.use('/feedback', jsonBodyGuard(checkBrowser));
  }
  const client = clientGuard(gw);
  const admin = adminGuard(gw);
  app.use('/v1/*', client);
  app.use('/feedback', client);
  app.use('/stats', admin);
  app.use('/metrics', admin);
  app.use('/dashboard/data', admin);

  // POST /v1/chat/completions, /v1/responses and /v1/embeddings are answered before Hono (see server.ts).
  app.get('/v1/models', listModels(gw));
  app.get('/v1/models/:id{.+}', getModel(gw));
  app.post('/feedback', postFeedback(gw));
  app.get('/stats', getStats(gw));
  app.get('/health', health(gw));
  app.route('/dashboard', dashboardRoutes(gw));
  app.get('/metrics', getMetrics(gw));

  for (const path of ['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/models', '/feedback', '/stats', '/health', '/metrics']) {
    app.all(path, (c) => {
      throw errors.methodNotAllowed(c.req.method, path);
    });
  }

  app.notFound((c) => {
    const err = errors.routeNotFound(c.req.method, c.req.path);
    if (!c.env.incoming.complete) closeAfterAnswer(c.env.incoming, c.env.outgoing);
    return c.json(err.toBody(), 404);
  });

  app.onError((err, c) => {
    const requestId = c.res.headers.get('x-request-id') ?? requestIdOf(c.env?.incoming?.headers ?? {});
    const answer = errorAnswer(gw, err, requestId);
    // The rest of a body refused before it was read whole is not read: the connection closes after the answer.
    if (c.env?.incoming !== undefined && !c.env.incoming.complete) closeAfterAnswer(c.env.incoming, c.env.outgoing);
    c.header('x-request-id', requestId);
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    return c.json(answer.body, answer.status as 400);
  });

  return app;
}
