import type { IncomingHttpHeaders } from 'node:http';
import type { Redactor } from './redact.js';

/**
 * The upstream response headers a client gets: what the answer is, the upstream's own timing and
 * API version, and what a client needs to pace itself (`x-ratelimit-*`, `retry-after`,
 * `retry-after-ms`). Everything else (organization, servers, proxies, cookies, caching) stays here.
 */
const RELAYED = new Set(['content-type', 'openai-processing-ms', 'openai-version', 'retry-after', 'retry-after-ms']);
const RATE_LIMIT_PREFIX = 'x-ratelimit-';

function scrubbed(value: string | string[], redactor: Redactor): string | string[] {
  return typeof value === 'string' ? redactor.scrubText(value) : value.map((v) => redactor.scrubText(v));
}

/**
 * The allowlisted upstream headers, their values scrubbed of the configured secrets; the upstream's
 * `x-request-id` as `x-upstream-request-id` (the gateway's own `x-request-id` is the client's).
 * A fresh object the caller may add to.
 */
export function relayedHeaders(upstream: IncomingHttpHeaders, redactor: Redactor): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined) continue;
    if (RELAYED.has(name) || name.startsWith(RATE_LIMIT_PREFIX)) out[name] = redactor.active ? scrubbed(value, redactor) : value;
  }
  const upstreamRequestId = upstream['x-request-id'];
  if (typeof upstreamRequestId === 'string') out['x-upstream-request-id'] = redactor.active ? redactor.scrubText(upstreamRequestId) : upstreamRequestId;
  return out;
}
