import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'undici';
import { adminQueries, GOOD_ADMIN_QUERIES, ODD_ADMIN_QUERIES, ODD_TRACE_IDS } from '../helpers/admin-queries.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';

/**
 * The admin query strings of test/http/bad-input.test.ts and test/http/fuzz.test.ts on a PostgreSQL
 * store, where values the HTTP layer let through reached SQL as a bigint out of range or a NUL in text.
 */
const pgSkip = await pgUnavailable();

describe.skipIf(pgSkip !== null)(`admin query strings on PostgreSQL${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let upstream: FakeUpstream;
  let db: TestDatabase;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    db = await createTestDatabase();
    dir = tempDir();
    gw = await startTestGateway(upstream, { database: { url: db.url, spoolPath: join(dir, 'spool.db') } }, { dir });
    const made = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(made.statusCode).toBe(200);
    await made.body.dump();
  });
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`);
    const text = await res.body.text();
    return { status: res.statusCode, text };
  };

  it('refuses odd values with a 400 naming the parameter, not a 500 from the database', async () => {
    for (const [path, param] of ODD_ADMIN_QUERIES) {
      const res = await get(path);
      expect(res.status, `${path.slice(0, 80)}: ${res.text.slice(0, 200)}`).toBe(400);
      expect(JSON.parse(res.text).error.param).toBe(param);
    }
    for (const path of GOOD_ADMIN_QUERIES) expect((await get(path)).status, path).toBe(200);
    for (const id of ODD_TRACE_IDS) {
      const res = await request(`${gw.url}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ trace_id: id, thumbs: 'up' }),
      });
      expect(res.statusCode, JSON.stringify(id).slice(0, 40)).toBe(400);
      await res.body.dump();
    }
  });

  it('fuzz: answers random admin query strings with 200 or 400, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(adminQueries, async (path) => {
        const res = await get(path);
        expect([200, 400, 431], `${path.slice(0, 120)} → ${res.status}: ${res.text.slice(0, 200)}`).toContain(res.status);
      }),
      { numRuns: 150, seed: 20261127 },
    );
  }, 120_000);
});
