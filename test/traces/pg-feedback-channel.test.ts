import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import type { FeedbackEvent } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { makeTrace } from '../helpers/trace.js';

const pgSkip = await pgUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(pgSkip !== null)(`feedback pushed between instances of a PostgreSQL store${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let db: TestDatabase;
  let dir: string;
  let a: PgTraceStore;
  let b: PgTraceStore;
  const heardByA: FeedbackEvent[] = [];
  const heardByB: FeedbackEvent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  }, 30_000);
  afterAll(async () => {
    await db.drop();
  }, 30_000);
  afterEach(async () => {
    await Promise.all([a?.close(), b?.close()]);
    rmSync(dir, { recursive: true, force: true });
    heardByA.length = 0;
    heardByB.length = 0;
  });

  async function openBoth() {
    dir = tempDir();
    a = await PgTraceStore.open({ url: db.url, spoolPath: join(dir, 'a.db'), connectTimeoutMs: 500 });
    b = await PgTraceStore.open({ url: db.url, spoolPath: join(dir, 'b.db'), connectTimeoutMs: 500 });
    a.onFeedback((e) => heardByA.push(e));
    b.onFeedback((e) => heardByB.push(e));
    await Promise.all([a.feedbackListening(), b.feedbackListening()]);
  }

  it('the other instance hears each feedback as it commits, with the trace\'s class, model and previous feedback; the poster does not', async () => {
    await openBoth();
    const trace = makeTrace({ queryClass: 'code', modelKey: 'coder', keyName: 'team-a' });
    const failed = makeTrace({ queryClass: 'math', modelKey: 'mathy', outcome: 'error', status: 502 });
    await a.insert(trace);
    await a.insert(failed);

    expect(await b.setFeedback(trace.id, { score: 0.25, comment: null, time: Date.now() })).toBeDefined();
    await expect.poll(() => heardByA.length).toBe(1);
    expect(heardByA[0]).toEqual({ traceId: trace.id, queryClass: 'code', model: 'coder', outcome: 'success', score: 0.25, previous: null });

    await a.setFeedback(trace.id, { score: 1, comment: 'better', time: Date.now() });
    await a.setFeedback(failed.id, { score: 0, comment: null, time: Date.now() });
    await expect.poll(() => heardByB.length).toBe(2);
    expect(heardByB).toEqual([
      { traceId: trace.id, queryClass: 'code', model: 'coder', outcome: 'success', score: 1, previous: 0.25 },
      { traceId: failed.id, queryClass: 'math', model: 'mathy', outcome: 'error', score: 0, previous: null },
    ]);
    // Feedback that changed nothing (another key's trace, or no such trace) is not heard.
    expect(await b.setFeedback(trace.id, { score: 0, comment: null, time: Date.now() }, 'team-b')).toBeUndefined();
    expect(await b.setFeedback('no-such-trace', { score: 0, comment: null, time: Date.now() })).toBeUndefined();
    await a.setFeedback(failed.id, { score: 0.5, comment: null, time: Date.now() });
    await expect.poll(() => heardByB.length).toBe(3);
    await sleep(100);
    expect(heardByA).toHaveLength(1);
    expect(heardByB.at(-1)).toMatchObject({ traceId: failed.id, score: 0.5, previous: 0 });
  });

  it('listens again after its connection is cut, and its process goes on meanwhile', async () => {
    await openBoth();
    const trace = makeTrace();
    await b.insert(trace);
    const cut = await db.query<{ n: number }>(
      `SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE application_name = 'tracegate-feedback' AND datname = current_database()`,
    );
    expect(cut[0]!.n).toBe(2);
    // What is posted while it is away arrives with the next sync instead; once it listens again,
    // feedback is heard at once.
    let score = 0;
    await expect
      .poll(
        async () => {
          score = score === 0 ? 1 : 0;
          await b.setFeedback(trace.id, { score, comment: null, time: Date.now() });
          await sleep(50);
          return heardByA.some((e) => e.traceId === trace.id && e.score === score);
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBe(true);
  });

  it('stops hearing once unsubscribed, and closes its connection with the store', async () => {
    await openBoth();
    const trace = makeTrace();
    await a.insert(trace);
    const stop = a.onFeedback((e) => heardByA.push({ ...e, model: `second:${e.model}` }));
    await b.setFeedback(trace.id, { score: 1, comment: null, time: Date.now() });
    await expect.poll(() => heardByA.length).toBe(2);
    stop();
    await b.setFeedback(trace.id, { score: 0, comment: null, time: Date.now() });
    await expect.poll(() => heardByA.length).toBe(3);
    await sleep(100);
    expect(heardByA.filter((e) => e.model.startsWith('second:'))).toHaveLength(1);
    await Promise.all([a.close(), b.close()]);
    const listening = await db.query<{ n: number }>(
      `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tracegate-feedback' AND datname = current_database()`,
    );
    expect(listening[0]!.n).toBe(0);
  });
});
