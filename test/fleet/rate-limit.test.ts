import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { REDIS_URL, redisPrefix, redisUnavailable } from '../helpers/services.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { startMember, stopMember, type FleetMember } from './fleet.js';

/** Per-key request limits across two `tracegate serve` processes, with and without a shared Redis. */

const redisSkip = await redisUnavailable();
const KEY = 'fleet-client-key';
const N = 10;

let upstream: FakeUpstream;
let dir: string;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = tempDir();
});
afterAll(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(id: string, limits: Record<string, unknown>) {
  return {
    database: { path: join(dir, `${id}.db`) },
    models: { small: { baseURL: upstream.baseURL, model: 'small-model' }, large: { baseURL: upstream.baseURL, model: 'large-model' } },
    router: { policy: 'learned', defaultModel: 'small' },
    auth: { clientKeys: [{ name: 'team', sha256: sha256(KEY).toString('hex'), requestsPerMinute: N }] },
    limits,
  };
}

async function chat(url: string): Promise<{ status: number; retryAfter: string | undefined; ms: number }> {
  const started = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.dump();
  return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, ms: performance.now() - started };
}

/** `count` requests with one key, alternating between the instances (two at a time). */
async function burst(members: FleetMember[], count: number) {
  const results: Awaited<ReturnType<typeof chat>>[] = [];
  for (let i = 0; i < count; i += 2) results.push(...(await Promise.all([chat(members[0]!.url), chat(members[1]!.url)])));
  return results;
}

async function pair(name: string, limits: (id: string) => Record<string, unknown>): Promise<FleetMember[]> {
  return [await startMember(dir, `${name}-a`, config(`${name}-a`, limits(`${name}-a`))), await startMember(dir, `${name}-b`, config(`${name}-b`, limits(`${name}-b`)))];
}

describe('without limits.redisUrl', () => {
  it('each instance limits on its own: two instances admit 2N', async () => {
    const members = await pair('local', () => ({}));
    try {
      const results = await burst(members, 3 * N);
      expect(results.filter((r) => r.status === 200).length).toBe(2 * N);
    } finally {
      for (const m of members) await stopMember(m);
    }
  }, 60_000);
});

describe.skipIf(redisSkip !== null)(`with a shared Redis${redisSkip ? ` — skipped: ${redisSkip}` : ''}`, () => {
  it('the fleet admits N requests per minute for one key, not 2N', async () => {
    const prefix = redisPrefix();
    const members = await pair('shared', () => ({ redisUrl: REDIS_URL, redisKeyPrefix: prefix }));
    try {
      const results = await burst(members, 3 * N);
      expect(results.filter((r) => r.status === 200).length).toBe(N);
      const refused = results.filter((r) => r.status === 429);
      expect(refused.length).toBe(2 * N);
      expect(refused.every((r) => Number(r.retryAfter) >= 1)).toBe(true);
    } finally {
      for (const m of members) await stopMember(m);
    }
  }, 60_000);

  it('Redis lost mid-way: no request is refused for that, each instance limits on its own meanwhile', async () => {
    const url = new URL(REDIS_URL);
    const proxy = await startTcpProxy(url.hostname, Number(url.port || 6379));
    const prefix = redisPrefix();
    const members = await pair('lost', () => ({ redisUrl: `redis://127.0.0.1:${proxy.port}`, redisKeyPrefix: prefix }));
    try {
      const first = await burst(members, 6);
      expect(first.every((r) => r.status === 200)).toBe(true);
      proxy.cut();
      // Each instance now admits up to N on its own (its own bucket is still full), and no request waits long.
      const during = await burst(members, 2 * N + 4);
      expect(during.filter((r) => r.status === 200).length).toBe(2 * N);
      expect(Math.max(...during.map((r) => r.ms))).toBeLessThan(1500);
      expect(members.map((m) => m.output()).join('\n')).toMatch(/Redis unreachable/);
    } finally {
      for (const m of members) await stopMember(m);
      await proxy.close();
    }
  }, 60_000);
});

describe('limits.redisUrl pointing where no Redis answers', () => {
  it('requests are answered, limited by each instance alone, without waiting on Redis', async () => {
    const port = await freePort();
    const members = await pair('absent', () => ({ redisUrl: `redis://127.0.0.1:${port}`, redisTimeoutMs: 100 }));
    try {
      const results = await burst(members, 3 * N);
      expect(results.filter((r) => r.status === 200).length).toBe(2 * N);
      expect(results.every((r) => r.status === 200 || r.status === 429)).toBe(true);
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(1000);
    } finally {
      for (const m of members) await stopMember(m);
    }
  }, 60_000);
});
