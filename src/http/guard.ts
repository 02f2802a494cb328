import type { IncomingMessage } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Services } from '../pipeline/services.js';
import { bearerToken } from '../access/keys.js';
import { errors } from '../core/errors.js';
import type { RateDecision } from '../access/rate-limit.js';

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

export interface Caller {
  /** The client key's name (null without client keys). */
  keyName: string | null;
  admin: boolean;
  /** Whom the limits count against: `admin`, the key's name, or `address:…` without keys. */
  id: string;
  /** Chat completions this caller may have in flight at once (0 = no cap). */
  maxConcurrent: number;
}

function admitted(caller: Caller, decision: RateDecision, perMinute: number): Caller {
  if (!decision.allowed) throw errors.rateLimited(perMinute, decision.retryAfterSeconds);
  return caller;
}

/**
 * For /v1/* and /feedback: the client key when keys are configured (401 otherwise), then the
 * per-caller request limit (429 with retry-after). The admin key also passes, as the caller "admin".
 * Throws the client's error; a promise only when the limit is shared (Redis answers after a round trip).
 */
export function admitClient(gw: Pick<Services, 'config' | 'keys' | 'limiter'>, incoming: IncomingMessage): Caller | Promise<Caller> {
  const token = tokenOf(incoming.headers);
  const admin = gw.keys.isAdmin(token);
  let keyName: string | null = null;
  let perMinute = gw.config.limits.requestsPerMinute;
  let maxConcurrent = gw.config.limits.maxConcurrentPerKey;
  if (gw.keys.requiresClientKey && !admin) {
    const key = gw.keys.client(token);
    if (!key) throw token === undefined ? errors.missingApiKey() : errors.invalidApiKey();
    keyName = key.name;
    perMinute = key.requestsPerMinute ?? perMinute;
    maxConcurrent = key.maxConcurrent ?? maxConcurrent;
  }
  const id = admin ? 'admin' : keyName ?? `address:${incoming.socket.remoteAddress ?? 'unknown'}`;
  const caller: Caller = { keyName, admin, id, maxConcurrent };
  const taken = gw.limiter.take(id, admin ? 0 : perMinute);
  return taken instanceof Promise ? taken.then((d) => admitted(caller, d, perMinute)) : admitted(caller, taken, perMinute);
}

/** `admitClient` as Hono middleware. */
export function clientGuard(gw: Pick<Services, 'config' | 'keys' | 'limiter'>): MiddlewareHandler<GatewayEnv> {
  return async function guardClient(c, next) {
    const admission = admitClient(gw, c.env.incoming);
    const caller = admission instanceof Promise ? await admission : admission;
    c.set('keyName', caller.keyName);
    c.set('admin', caller.admin);
    await next();
  };
}

/**
 * For /stats, /metrics and the dashboard's data, which show every tenant's traffic: the admin key
 * when one is configured; with client keys and no admin key, nobody (403 `admin_key_required`);
 * open only in keyless mode (no client keys, no admin key).
 */
export function adminGuard(gw: Pick<Services, 'config' | 'keys' | 'limiter'>): MiddlewareHandler<GatewayEnv> {
  return async function guardAdmin(c, next) {
    const access = gw.keys.adminAccess;
    if (access === 'closed') throw errors.adminKeyRequired();
    if (access === 'key') {
      const token = tokenOf(c.env.incoming.headers);
      if (!gw.keys.isAdmin(token)) throw token === undefined ? errors.missingApiKey() : errors.invalidApiKey();
    }
    await next();
  };
}
