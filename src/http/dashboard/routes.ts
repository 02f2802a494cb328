import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Services } from '../../pipeline/services.js';
import { errors } from '../../core/errors.js';
import { ASSETS, PAGE, load, type Asset } from './assets.js';
import { getDashboardData } from './data.js';

/** Only this origin's scripts, styles and fetches: the page works offline and runs no inline code. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

async function send(c: Context, asset: Asset, cacheControl: string) {
  const body = await load(asset);
  return c.body(new Uint8Array(body), 200, {
    'content-type': asset.contentType,
    'cache-control': cacheControl,
    'x-content-type-options': 'nosniff',
  });
}

/** GET /dashboard (the page), /dashboard/data (its JSON) and /dashboard/assets/{file}; mounted by app.ts. */
export function dashboardRoutes(gw: Services) {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/', async (c) => {
    c.header('content-security-policy', CSP);
    c.header('referrer-policy', 'no-referrer');
    return send(c, PAGE, 'no-cache');
  });
  app.get('/data', getDashboardData(gw));
  app.get('/assets/:name', async (c) => {
    const asset = Object.hasOwn(ASSETS, c.req.param('name')) ? ASSETS[c.req.param('name')]!() : undefined;
    if (!asset) throw errors.routeNotFound(c.req.method, c.req.path);
    return send(c, asset, 'public, max-age=300');
  });
  for (const path of ['/', '/data']) {
    app.all(path, (c) => {
      throw errors.methodNotAllowed(c.req.method, c.req.path);
    });
  }
  return app;
}
