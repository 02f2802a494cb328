import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../core/config.js';

export function sha256(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export interface ClientKey {
  name: string;
  digest: Buffer;
  requestsPerMinute?: number;
  maxConcurrent?: number;
}

/**
 * Who may read the admin endpoints (/stats, /metrics, /dashboard/data): `key`, the admin key's
 * holder; `closed`, nobody (client keys are configured but no admin key: tenants' data stays in);
 * `open`, anyone who reaches the gateway (keyless local mode: no client keys, no admin key).
 */
export type AdminAccess = 'key' | 'closed' | 'open';

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S.*)$/i.exec(header.trim());
  return match ? match[1]!.trim() : undefined;
}

/**
 * Checks keys against their SHA-256 digests in constant time: every configured digest is compared,
 * whichever matches, so the time taken says nothing about which key was close.
 */
export class KeyRing {
  private readonly clients: ClientKey[];
  private readonly admin: Buffer | undefined;

  constructor(auth: Config['auth']) {
    this.clients = auth.clientKeys.map((k) => ({
      name: k.name,
      digest: Buffer.from(k.sha256, 'hex'),
      requestsPerMinute: k.requestsPerMinute,
      maxConcurrent: k.maxConcurrent,
    }));
    this.admin = auth.adminKey ? Buffer.from(auth.adminKey.sha256, 'hex') : undefined;
  }

  get requiresClientKey(): boolean {
    return this.clients.length > 0;
  }

  get adminAccess(): AdminAccess {
    if (this.admin !== undefined) return 'key';
    return this.clients.length > 0 ? 'closed' : 'open';
  }

  /** The client key a token belongs to, or undefined. */
  client(token: string | undefined): ClientKey | undefined {
    if (token === undefined) return undefined;
    const digest = sha256(token);
    let found: ClientKey | undefined;
    for (const key of this.clients) {
      if (timingSafeEqual(digest, key.digest) && found === undefined) found = key;
    }
    return found;
  }

  isAdmin(token: string | undefined): boolean {
    if (this.admin === undefined || token === undefined) return false;
    return timingSafeEqual(sha256(token), this.admin);
  }
}
