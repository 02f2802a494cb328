import type { IncomingHttpHeaders } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import { isLoopback, type Config } from '../core/config.js';
import { errors } from '../core/errors.js';
import type { GatewayEnv } from './guard.js';

/**
 * Without client keys, anything that reaches the gateway may use it; on a loopback address that is
 * this machine's programs, and also the web pages its browser shows. These checks keep the pages
 * out, and leave programs (the SDKs, curl) alone:
 *
 * - Host: a page on a name that resolves to 127.0.0.1 (DNS rebinding) can read the answers as its
 *   own, but sends its own name as Host. Only loopback names and `server.host` are served. A gateway
 *   bound to a wildcard address (0.0.0.0, ::) answers whatever name it is reached by, so there the
 *   Host is not checked.
 * - Content-Type: a page may POST `text/plain` (and two other types) to any address without asking
 *   first; `application/json` needs the gateway's consent (a CORS preflight it never gives). A POST
 *   must be JSON (`application/json`, with any parameters, or `application/…+json`).
 * - Origin: browsers name the page that sent a request; one from a page of another site is refused
 *   (programs send no Origin).
 */
export interface BrowserCheck {
  /** Host and Origin, for every request. */
  request(headers: IncomingHttpHeaders): void;
  /** Content-Type, for a POST whose body the gateway reads. */
  jsonBody(headers: IncomingHttpHeaders): void;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** A host name without brackets (IPv6) or a trailing dot, lowercased. */
function bare(name: string): string {
  return name.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/** The host name of a Host header value: `name`, `name:port`, `[v6]` or `[v6]:port`. */
export function hostnameOf(host: string): string {
  const h = host.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return bare(end < 0 ? h : h.slice(0, end + 1));
  }
  const colon = h.indexOf(':');
  return bare(colon < 0 ? h : h.slice(0, colon));
}

/** `application/json` (any parameters) or an `application/…+json` type. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(';');
  const type = (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The checks for a keyless gateway, or null when client keys are configured (a page cannot send a key). */
export function browserCheck(config: Config, keyless: boolean): BrowserCheck | null {
  if (!keyless) return null;
  const configured = bare(config.server.host);
  const wildcard = WILDCARD.has(configured);
  const servedName = (name: string) => isLoopback(name) || name === configured;

  const originAllowed = (origin: string, host: string | undefined): boolean => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (servedName(bare(url.hostname))) return true;
    // Bound to a wildcard address: the gateway's own pages are those of the name it was reached by.
    return wildcard && host !== undefined && url.host.toLowerCase() === host.trim().toLowerCase();
  };

  return {
    request(headers) {
      const host = headers.host;
      if (!wildcard && (host === undefined || !servedName(hostnameOf(host)))) throw errors.hostNotAllowed((host ?? '').slice(0, 200));
      const origin = headers.origin;
      if (origin !== undefined && !originAllowed(origin, host)) throw errors.originNotAllowed(origin.slice(0, 200));
    },
    jsonBody(headers) {
      if (!isJsonContentType(headers['content-type'])) throw errors.unsupportedMediaType();
    },
  };
}

/** The Host and Origin checks as Hono middleware (the chat hot path calls them itself). */
export function browserGuard(check: BrowserCheck): MiddlewareHandler<GatewayEnv> {
  return async function guardBrowser(c, next) {
    check.request(c.env.incoming.headers);
    await next();
  };
}

/** The Content-Type check as Hono middleware, for a route that reads a JSON body. */
export function jsonBodyGuard(check: BrowserCheck): MiddlewareHandler<GatewayEnv> {
  return async function guardJsonBody(c, next) {
    if (c.env.incoming.method === 'POST') check.jsonBody(c.env.incoming.headers);
    await next();
  };
}
