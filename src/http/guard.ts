import type { MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Gateway } from '../gateway.js';
import { bearerToken } from './auth.js';
import { errors } from './errors.js';

export type GatewayEnv = {
  Bindings: HttpBindings;
  Variables: {
    /** The client key's name (null without client keys). */
    keyName: string | null;
    /** Whether the request carried the admin key. */
    admin: boolean;
  };
};

function tokenOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const header = headers.authorization;
  return bearerToken(Array.isArray(header) ? header[0] : header);
}

/**
 * For /v1/* and /feedback: the client key when keys are configured (401 otherwise), then the
 * per-caller request limit (429 with retry-after). The admin key also passes, as the caller "admin".
 */
export function clientGuard(gw: Gateway): MiddlewareHandler<GatewayEnv> {
  return async function guardClient(c, next) {
    const token = tokenOf(c.env.incoming.headers);
    const admin = gw.keys.isAdmin(token);
    let keyName: string | null = null;
    let perMinute = gw.config.limits.requestsPerMinute;
    if (gw.keys.requiresClientKey && !admin) {
      const key = gw.keys.client(token);
      if (!key) throw token === undefined ? errors.missingApiKey() : errors.invalidApiKey();
      keyName = key.name;
      perMinute = key.requestsPerMinute ?? perMinute;
    }
    c.set('keyName', keyName);
    c.set('admin', admin);
    const caller = admin ? 'admin' : keyName ?? `address:${c.env.incoming.socket.remoteAddress ?? 'unknown'}`;
    const taken = gw.limiter.take(caller, admin ? 0 : perMinute);
    // Shared limits (Redis) answer after a round trip; in-memory ones at once.
    const decision = taken instanceof Promise ? await taken : taken;
    if (!decision.allowed) {
      c.header('retry-after', String(decision.retryAfterSeconds));
      throw errors.rateLimited(perMinute, decision.retryAfterSeconds);
    }
    await next();
  };
}

/** For /stats, /metrics and the dashboard's data: the admin key, when one is configured. */
export function adminGuard(gw: Gateway): MiddlewareHandler<GatewayEnv> {
  return async function guardAdmin(c, next) {
    if (gw.keys.requiresAdminKey) {
      const token = tokenOf(c.env.incoming.headers);
      if (!gw.keys.isAdmin(token)) throw token === undefined ? errors.missingApiKey() : errors.invalidApiKey();
    }
    await next();
  };
}
