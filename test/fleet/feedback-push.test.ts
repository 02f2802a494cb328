import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import OpenAI from 'openai';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { getJson, postJson, startMember, stopMember, type FleetMember } from './fleet.js';

/**
 * Feedback posted to one instance reaches the policy of the instance that answered as it commits
 * (PostgreSQL LISTEN/NOTIFY), not at that instance's next sync: here the syncs are a minute apart.
 */

const pgSkip = await pgUnavailable();

interface StatsBody {
  classes: Record<string, { models: Record<string, { estimate: number | null }> }>;
}

async function fleetFeedbackCount(m: FleetMember): Promise<number> {
  const res = await request(`${m.url}/metrics`);
  const text = await res.body.text();
  return Number(/^tracegate_fleet_feedback_total (\S+)$/m.exec(text)?.[1] ?? NaN);
}

describe.skipIf(pgSkip !== null)(`feedback across a fleet on PostgreSQL${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let db: TestDatabase;
  let dir: string;
  let upstream: FakeUpstream;
  let a: FleetMember;
  let b: FleetMember;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    upstream = await startFakeUpstream();
    const config = (syncIntervalMs: number) => ({
      database: { url: db.url, poolSize: 2 },
      models: { coder: { baseURL: upstream.baseURL, model: 'coder' }, chatty: { baseURL: upstream.baseURL, model: 'chatty' } },
      router: { policy: 'adaptive', defaultModel: 'chatty', seed: 3, syncIntervalMs },
    });
    // gw-a syncs once a minute; gw-b never (it does not learn from the fleet at all).
    [a, b] = await Promise.all([startMember(dir, 'gw-a', config(60_000)), startMember(dir, 'gw-b', config(0))]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a && stopMember(a), b && stopMember(b)]);
    await upstream?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  async function answer(m: FleetMember) {
    const client = new OpenAI({ baseURL: `${m.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'Fix this: ```js\nconst x = 1\n```' }] })
      .withResponse();
    expect(response.headers.get('x-router-class')).toBe('code');
    return { traceId: response.headers.get('x-trace-id')!, model: response.headers.get('x-router-model')! };
  }

  const estimate = async (m: FleetMember, model: string) =>
    (await getJson<StatsBody>(`${m.url}/stats`)).body.classes.code?.models[model]?.estimate ?? null;

  it('a thumbs down posted to gw-b reaches gw-a, which answered, before gw-a\'s next sync', async () => {
    const { traceId, model } = await answer(a);
    // An answer nobody rated says nothing of its quality: the estimate is still the prior's 1/2.
    expect(await estimate(a, model)).toBeCloseTo(1 / 2, 6);
    expect(await postJson(`${b.url}/feedback`, { trace_id: traceId, thumbs: 'down' })).toBe(200);
    await expect.poll(() => estimate(a, model), { timeout: 5000 }).toBeLessThan(0.47);
    expect(await fleetFeedbackCount(a)).toBe(1);
  });

  it('an instance that does not sync with the fleet does not hear it either', async () => {
    const { traceId, model } = await answer(b);
    expect(await estimate(b, model)).toBeCloseTo(1 / 2, 6);
    // gw-b does not listen: gw-a holds the database's only feedback connection.
    const listeners = await db.query<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tracegate-feedback' AND datname = current_database()`,
    );
    expect(listeners[0]!.n).toBe(1);
    expect(await postJson(`${a.url}/feedback`, { trace_id: traceId, thumbs: 'down' })).toBe(200);
    // Feedback committed after it reaches gw-a: PostgreSQL delivers notifications in commit order,
    // so by then the first one had been delivered to whoever listened.
    const heard = await fleetFeedbackCount(a);
    const later = await answer(a);
    expect(await postJson(`${b.url}/feedback`, { trace_id: later.traceId, thumbs: 'up' })).toBe(200);
    await expect.poll(() => fleetFeedbackCount(a), { timeout: 5000 }).toBe(heard + 1);
    expect(await estimate(b, model)).toBeCloseTo(1 / 2, 6);
    expect(await fleetFeedbackCount(b)).toBe(0);
  });
});
