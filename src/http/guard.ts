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

type GuardServices = Pick<Services, 'config' | 'keys' | 'limiter' | 'failedAuth'>;

function tokenOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const header = headers.authorization;
  return bearerToken(Array.isArray(header) ? header[0] : header);
}

function addressOf(incoming: IncomingMessage): string {
  return incoming.socket.remoteAddress ?? 'unknown';
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

function admitted<T>(admit: T, decision: RateDecision, perMinute: number): T {
  if (!decision.allowed) throw errors.rateLimited(perMinute, decision.retryAfterSeconds);
  return admit;
}

/** Refuses an address that has had too many keys wrong lately, before its key is even looked at. */
function refuseThrottled(gw: GuardServices, address: string): void {
  const decision = gw.failedAuth.check(address);
  if (!decision.allowed) throw errors.tooManyFailedAuth(decision.retryAfterSeconds);
}

/** Counts a wrong key against its address and gives the client's error. */
function wrongKey(gw: GuardServices, address: string) {
  gw.failedAuth.failed(address);
  return errors.invalidApiKey();
}

/**
 * For /v1/* and /feedback: the client key when keys are configured (401 otherwise), then the
 * per-caller request limit (429 with retry-after). The admin key also passes, as the caller "admin",
 * under `limits.adminRequestsPerMinute`. An address that sent too many wrong keys gets 429 until its
 * allowance refills. Throws the client's error; a promise only when the limit is shared (Redis
 * answers after a round trip).
 */
export function admitClient(gw: GuardServices, incoming: IncomingMessage): Caller | Promise<Caller> {
  const token = tokenOf(incoming.headers);
  const limits = gw.config.limits;
  const address = addressOf(incoming);
  // Without client keys a token is only looked at as a possible admin key: none is wrong.
  if (token !== undefined && gw.keys.requiresClientKey) refuseThrottled(gw, address);
  const admin = gw.keys.isAdmin(token);
  let keyName: string | null = null;
  let perMinute = admin ? limits.adminRequestsPerMinute : limits.requestsPerMinute;
  let maxConcurrent = limits.maxConcurrentPerKey;
  if (gw.keys.requiresClientKey && !admin) {
    const key = gw.keys.client(token);
    if (!key) throw token === undefined ? errors.missingApiKey() : wrongKey(gw, address);
    keyName = key.name;
    perMinute = key.requestsPerMinute ?? perMinute;
    maxConcurrent = key.maxConcurrent ?? maxConcurrent;
  }
  const id = admin ? 'admin' : keyName ?? `address:${address}`;
  const caller: Caller = { keyName, admin, id, maxConcurrent };
  const taken = gw.limiter.take(id, perMinute);
  return taken instanceof Promise ? taken.then((d) => admitted(caller, d, perMinute)) : admitted(caller, taken, perMinute);
}

/** `admitClient` as Hono middleware. */
export function clientGuard(gw: GuardServices): MiddlewareHandler<GatewayEnv> {
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
 * when one is configured (under `limits.adminRequestsPerMinute`); with client keys and no admin key,
 * nobody (403 `admin_key_required`); open only in keyless mode (no client keys, no admin key).
 */
export function adminGuard(gw: GuardServices): MiddlewareHandler<GatewayEnv> {
  return async function guardAdmin(c, next) {
    const access = gw.keys.adminAccess;
    if (access === 'closed') throw errors.adminKeyRequired();
    if (access === 'key') {
      const incoming = c.env.incoming;
      const token = tokenOf(incoming.headers);
      if (token === undefined) throw errors.missingApiKey();
      const address = addressOf(incoming);
      refuseThrottled(gw, address);
      if (!gw.keys.isAdmin(token)) {
        // A tenant's own key where the admin key is needed is a mistake, not a guess.
        if (gw.keys.client(token) !== undefined) throw errors.invalidApiKey();
        throw wrongKey(gw, address);
      }
      const perMinute = gw.config.limits.adminRequestsPerMinute;
      const taken = gw.limiter.take('admin', perMinute);
      admitted(null, taken instanceof Promise ? await taken : taken, perMinute);
    }
    await next();
  };
}
