import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';

/**
 * A fleet keeps a conversation on one model: two gateways on one PostgreSQL store, differently
 * seeded, the conversation's turns alternating between them (as a load balancer would send them).
 */
const pgSkip = await pgUnavailable();

const SYNC_MS = 2000;

describe.skipIf(pgSkip !== null)(`sticky sessions across a fleet${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let upstream: FakeUpstream;
  let db: TestDatabase;
  const dirs: string[] = [];
  const fleet: TestGateway[] = [];
  /** The sticky sessions' clock of both gateways. */
  let now = Date.now();

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    db = await createTestDatabase();
    const m = (model: string) => ({ baseURL: upstream.baseURL, model, timeoutMs: 2000 });
    for (const seed of [1, 2]) {
      const dir = tempDir();
      dirs.push(dir);
      fleet.push(
        await startTestGateway(
          upstream,
          {
            models: { a: m('a-model'), b: m('b-model'), c: m('c-model') },
            router: { policy: 'adaptive', seed, syncIntervalMs: SYNC_MS, circuitBreaker: { failures: 100, cooldownSeconds: 30 } },
            database: { url: db.url, spoolPath: join(dir, 'spool.db') },
            instanceId: `gw-${seed}`,
          },
          { dir, clock: () => now },
        ),
      );
    }
  }, 30_000);
  afterAll(async () => {
    for (const gw of fleet) await gw.stop();
    await upstream?.close();
    await db?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  interface Turn {
    model: string;
    reason: string;
  }

  /** `n` turns of one conversation, turn i on gateway i mod 2. */
  async function alternating(n: number, headers: Record<string, string>, messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'hello' }]): Promise<Turn[]> {
    const turns: Turn[] = [];
    for (let i = 0; i < n; i++) {
      const client: OpenAI = fleet[i % 2]!.client;
      const { data, response } = await client.chat.completions.create({ model: 'auto', messages }, { headers }).withResponse();
      turns.push({ model: response.headers.get('x-router-model')!, reason: response.headers.get('x-router-reason')! });
      messages = [...messages, { role: 'assistant', content: data.choices[0]!.message.content! }, { role: 'user', content: `turn ${i + 2}` }];
    }
    return turns;
  }

  it('turns alternating between two gateways stay on one model; without a session they move', async () => {
    const loose = await alternating(12, {});
    expect(new Set(loose.map((t) => t.model)).size).toBeGreaterThan(1);

    const turns = await alternating(12, { 'x-session-id': 'fleet-conversation' });
    expect(new Set(turns.map((t) => t.model)).size).toBe(1);
    expect(turns[0]!.reason).not.toBe('sticky');
    expect(turns.slice(1).every((t) => t.reason === 'sticky')).toBe(true);
    // Each gateway answered sticky turns: the second learned the session from the store.
    const traces = await fleet[0]!.gateway.store.recent(12);
    const sticky = traces.filter((t) => t.reason === 'sticky');
    expect(new Set(sticky.map((t) => t.instanceId))).toEqual(new Set(['gw-1', 'gw-2']));
    // One row in the store for the whole conversation.
    expect(await db.query('SELECT model_key FROM sticky_sessions')).toEqual([{ model_key: turns[0]!.model }]);
  });

  it('a conversation one gateway moves is followed by the other once it reads the session again', async () => {
    const headers = { 'x-session-id': 'fleet-moves' };
    const first = await alternating(4, headers);
    const old = first[0]!.model;
    expect(first.every((t) => t.model === old)).toBe(true);
    // The model fails on the second gateway's turn: the conversation moves there.
    upstream.script(`${old}-model`, { kind: 'status', status: 500 });
    const { response } = await fleet[1]!.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'moving' }] }, { headers })
      .withResponse();
    const moved = response.headers.get('x-router-model')!;
    expect(moved).not.toBe(old);
    expect(response.headers.get('x-router-reason')).toBe('failover');
    upstream.script(`${old}-model`, { kind: 'answer' });
    // The first gateway reads a session again once a sync's interval has passed since it last did.
    now += SYNC_MS;
    const after = await alternating(8, headers);
    expect(after.every((t) => t.model === moved && t.reason === 'sticky')).toBe(true);
  });
});
