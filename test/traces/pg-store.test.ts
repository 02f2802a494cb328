import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { FeedbackEvent, TraceRecord } from '../../src/traces/types.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { makeTrace } from '../helpers/trace.js';

const pgSkip = await pgUnavailable();
const poll = { timeout: 10_000, interval: 25 };

let n = 0;
function trace(over: Partial<TraceRecord> = {}): TraceRecord {
  n++;
  return makeTrace({ id: `P${String(n).padStart(25, '0')}`, ...over });
}

describe('SQLite migrations moved to drizzle/sqlite', () => {
  it('a database made from the old drizzle/ folder opens and migrates cleanly', async () => {
    const dir = tempDir();
    try {
      // The folder as it was (drizzle/ with meta/ beside the SQL files): drizzle keys on each entry's time, not the path.
      const old = join(dir, 'old-drizzle');
      cpSync(resolve(import.meta.dirname, '../../drizzle/sqlite'), old, { recursive: true });
      const path = join(dir, 'traces.db');
      const raw = new Database(path);
      migrate(drizzle(raw), { migrationsFolder: old });
      raw.close();
      const before = new SqliteTraceStore({ path });
      const t = trace();
      await before.insert(t);
      await before.close();
      const store = new SqliteTraceStore({ path });
      expect(await store.get(t.id)).toEqual(t);
      const applied = store.db.prepare('SELECT COUNT(*) AS n FROM __drizzle_migrations').get() as { n: number };
      const journal = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../drizzle/sqlite/meta/_journal.json'), 'utf8')) as { entries: unknown[] };
      expect(applied.n).toBe(journal.entries.length);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(pgSkip !== null)(`PostgreSQL store${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let db: TestDatabase;
  let dir: string;
  const stores: PgTraceStore[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  }, 30_000);
  afterAll(async () => {
    await db.drop();
  }, 30_000);
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Empty tables for a test (the first store to open makes them). */
  async function empty() {
    const made = await db.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM pg_tables WHERE tablename = 'traces'`);
    if (made[0]!.n > 0) await db.query('TRUNCATE traces RESTART IDENTITY');
  }

  async function open(url = db.url, spoolPath = join(dir, 'spool.db'), extra: Partial<Parameters<typeof PgTraceStore.open>[0]> = {}) {
    const s = await PgTraceStore.open({ url, spoolPath, connectTimeoutMs: 500, ...extra });
    stores.push(s);
    return s;
  }

  it('instances starting together on an empty database migrate once, in turn (advisory lock)', async () => {
    dir = tempDir();
    const fresh = await createTestDatabase();
    try {
      const opened = await Promise.all(
        Array.from({ length: 6 }, (_, i) => PgTraceStore.open({ url: fresh.url, spoolPath: join(dir, `spool-${i}.db`) })),
      );
      await Promise.all(opened.map((s, i) => s.insert(trace({ instanceId: `gw-${i}` }))));
      expect(await opened[0]!.count()).toBe(6);
      await Promise.all(opened.map((s) => s.close()));
      const applied = await fresh.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM drizzle.__drizzle_migrations');
      const journal = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../drizzle/pg/meta/_journal.json'), 'utf8')) as { entries: unknown[] };
      expect(applied[0]!.n).toBe(journal.entries.length);
    } finally {
      await fresh.drop();
    }
  });

  it('its sessions run without JIT, and with synchronous_commit as configured', async () => {
    dir = tempDir();
    const strict = await open();
    const setting = async (s: PgTraceStore, name: string) => (await s.pool.query(`SHOW ${name}`)).rows[0][name] as string;
    expect(await setting(strict, 'jit')).toBe('off');
    expect(await setting(strict, 'synchronous_commit')).toBe('on');
    const relaxed = await open(db.url, join(dir, 'spool-2.db'), { synchronousCommit: false });
    expect(await setting(relaxed, 'synchronous_commit')).toBe('off');
  });

  it('a spool file belongs to one process at a time', async () => {
    dir = tempDir();
    await open();
    await expect(PgTraceStore.open({ url: db.url, spoolPath: join(dir, 'spool.db') })).rejects.toThrow(/in use by another tracegate process/);
  });

  it('while PostgreSQL is unreachable, traces go to the spool; back, they arrive in order, once', async () => {
    dir = tempDir();
    const proxy: TcpProxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    try {
      const store = await open(viaProxy(db.url, proxy));
      const before = Array.from({ length: 20 }, () => trace());
      await Promise.all(before.map((t) => store.insert(t)));
      expect(await store.health()).toEqual({ status: 'ok', spoolDepth: 0 });

      proxy.cut();
      const during = Array.from({ length: 50 }, (_, i) => trace(i === 7 ? { modelKey: 'held', endpoint: 'responses', responseId: 'resp_spooled' } : {}));
      // Every write still resolves (committed to the spool), in batches as they come.
      for (let i = 0; i < during.length; i += 10) await Promise.all(during.slice(i, i + 10).map((t) => store.insert(t)));
      expect(store.spoolDepth()).toBe(50);
      const health = await store.health();
      expect(health).toMatchObject({ status: 'degraded', spoolDepth: 50 });
      expect(health.error).toMatch(/unreachable/);
      // A spooled trace can be read and given feedback; reads of the database fail meanwhile.
      expect(await store.get(during[3]!.id)).toEqual(during[3]);
      expect((await store.setFeedback(during[3]!.id, { score: 0.25, comment: 'late', time: 9, source: 'human' }))?.previous).toBeNull();
      expect(await store.setFeedback(during[3]!.id, { score: 1, comment: null, time: 10, source: 'judge' })).toMatchObject({
        applied: false,
        previous: 0.25,
        trace: { feedback: 0.25, feedbackSource: 'human' },
      });
      await expect(store.count()).rejects.toThrow(/unreachable/);
      // A spooled answer's response id still finds its model.
      expect(await store.modelOfResponse('resp_spooled')).toBe('held');

      proxy.restore();
      const after = Array.from({ length: 10 }, () => trace());
      await Promise.all(after.map((t) => store.insert(t)));
      await expect.poll(async () => (await store.health()).status, poll).toBe('ok');
      expect(store.spoolDepth()).toBe(0);
      const ids = (await store.list({})).map((t) => t.id);
      expect(ids).toEqual([...before, ...during, ...after].map((t) => t.id));
      expect(await store.get(during[3]!.id)).toMatchObject({ feedback: 0.25, feedbackComment: 'late', feedbackSource: 'human' });
      const dupes = await db.query<{ n: number }>('SELECT COUNT(*)::int - COUNT(DISTINCT id)::int AS n FROM traces');
      expect(dupes[0]!.n).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('a database that stops answering (packets dropped): writes wait writeTimeoutMs at most, then spool; none lost or doubled', async () => {
    dir = tempDir();
    await empty();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    try {
      const store = await open(viaProxy(db.url, proxy), join(dir, 'spool.db'), { writeTimeoutMs: 400, connectTimeoutMs: 300 });
      const before = Array.from({ length: 5 }, () => trace());
      await Promise.all(before.map((t) => store.insert(t)));
      proxy.stall();
      const started = Date.now();
      const first = Array.from({ length: 5 }, () => trace());
      await Promise.all(first.map((t) => store.insert(t)));
      expect(Date.now() - started).toBeLessThan(2000);
      // Known to be away now: the next ones go to the spool without waiting.
      const t1 = Date.now();
      const next = Array.from({ length: 5 }, () => trace());
      await Promise.all(next.map((t) => store.insert(t)));
      expect(Date.now() - t1).toBeLessThan(100);
      expect((await store.health()).status).toBe('degraded');
      proxy.restore();
      await expect.poll(() => store.spoolDepth(), poll).toBe(0);
      expect((await store.list({})).map((t) => t.id)).toEqual([...before, ...first, ...next].map((t) => t.id));
    } finally {
      await proxy.close();
    }
  });

  it('what a process left in its spool is written by the next one to open it', async () => {
    dir = tempDir();
    await empty();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    try {
      const spoolPath = join(dir, 'spool.db');
      const store = await PgTraceStore.open({ url: viaProxy(db.url, proxy), spoolPath, connectTimeoutMs: 500 });
      proxy.cut();
      const spooled = Array.from({ length: 30 }, () => trace());
      await Promise.all(spooled.map((t) => store.insert(t)));
      await store.close(); // PostgreSQL still away: the traces stay in the spool file
      const next = await open(db.url, spoolPath);
      await expect.poll(() => next.spoolDepth(), poll).toBe(0);
      expect((await next.list({})).map((t) => t.id)).toEqual(spooled.map((t) => t.id));
    } finally {
      await proxy.close();
    }
  });

  it('a trace PostgreSQL refuses is set aside, and the others still arrive', async () => {
    dir = tempDir();
    await empty();
    const store = await open();
    // An int4 column cannot hold 2^40 tokens: the batch fails, then its rows go one by one.
    const good = [trace(), trace()];
    const bad = trace({ promptTokens: 2 ** 40 });
    await Promise.all([store.insert(good[0]!), store.insert(bad), store.insert(good[1]!)]);
    await expect.poll(() => store.spoolDepth(), poll).toBe(0);
    expect((await store.list({})).map((t) => t.id)).toEqual(good.map((t) => t.id));
    await store.close();
    const spool = new Database(join(dir, 'spool.db'));
    const rejected = spool.prepare('SELECT id, error FROM rejected').all() as { id: string; error: string }[];
    spool.close();
    expect(rejected.map((r) => r.id)).toEqual([bad.id]);
    expect(rejected[0]!.error).toMatch(/out of range/);
  });

  it('arm_counts follows inserts, purges, deletes and truncation', async () => {
    dir = tempDir();
    await empty();
    const store = await open();
    const counts = async () =>
      Object.fromEntries(
        (await db.query<{ k: string; n: number }>(`SELECT query_class || '/' || model_key || '/' || source AS k, count::int AS n FROM arm_counts WHERE count > 0 ORDER BY 1`)).map((r) => [r.k, r.n]),
      );
    expect(await counts()).toEqual({});
    await Promise.all([
      ...Array.from({ length: 5 }, () => store.insert(trace({ modelKey: 'a', time: 1000 }))),
      ...Array.from({ length: 3 }, () => store.insert(trace({ modelKey: 'b', time: 3000 }))),
      store.insert(trace({ modelKey: 'b', source: 'offline', time: 1000 })),
    ]);
    await store.importTraces([trace({ modelKey: 'c', queryClass: 'code', time: 3000 })]);
    expect(await counts()).toEqual({ 'code/c/live': 1, 'short/a/live': 5, 'short/b/live': 3, 'short/b/offline': 1 });
    await store.purge(2000);
    await store.purgeOffline();
    expect(await counts()).toEqual({ 'code/c/live': 1, 'short/b/live': 3 });
    expect((await store.evidence({ decay: 0.5 })).map((e) => [e.model, e.count])).toEqual([['b', 3], ['c', 1], ['a', 5]]);
    await db.query('TRUNCATE traces');
    expect(await counts()).toEqual({});
  });

  it('one INSERT per batch of concurrent writes', async () => {
    dir = tempDir();
    await empty();
    const store = await open();
    // A statement-level trigger counts the INSERT statements into traces, and their transactions.
    await db.query('CREATE TABLE insert_statements (xid xid8 NOT NULL)');
    await db.query(`CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO insert_statements VALUES (pg_current_xact_id()); RETURN NULL; END $$`);
    await db.query('CREATE TRIGGER count_insert AFTER INSERT ON traces FOR EACH STATEMENT EXECUTE FUNCTION count_insert()');
    try {
      await Promise.all(Array.from({ length: 400 }, () => store.insert(trace())));
      expect(await store.count()).toBe(400);
      const [counted] = await db.query<{ statements: number; commits: number }>(
        'SELECT COUNT(*)::int AS statements, COUNT(DISTINCT xid::text)::int AS commits FROM insert_statements',
      );
      // 400 writes of one turn: one batch, one INSERT, one commit.
      expect(counted).toEqual({ statements: 1, commits: 1 });
    } finally {
      await db.query('DROP TRIGGER count_insert ON traces');
      await db.query('DROP FUNCTION count_insert()');
      await db.query('DROP TABLE insert_statements');
    }
  });

  describe('feedback pushed between instances', () => {
    let a: PgTraceStore;
    let b: PgTraceStore;
    const heardByA: FeedbackEvent[] = [];
    const heardByB: FeedbackEvent[] = [];

    async function openBoth() {
      dir = tempDir();
      heardByA.length = 0;
      heardByB.length = 0;
      a = await open(db.url, join(dir, 'a.db'));
      b = await open(db.url, join(dir, 'b.db'));
      a.onFeedback((e) => heardByA.push(e));
      b.onFeedback((e) => heardByB.push(e));
      await Promise.all([a.feedbackListening(), b.feedbackListening()]);
    }

    it('the other instance hears each feedback as it commits, with the trace\'s class, model and previous feedback; the poster does not', async () => {
      await openBoth();
      const answered = trace({ queryClass: 'code', modelKey: 'coder', keyName: 'team-a' });
      const failed = trace({ queryClass: 'math', modelKey: 'mathy', outcome: 'error', status: 502 });
      await a.insert(answered);
      await a.insert(failed);

      expect(await b.setFeedback(answered.id, { score: 0.25, comment: null, time: Date.now(), source: 'human' })).toBeDefined();
      await expect.poll(() => heardByA.length).toBe(1);
      expect(heardByA[0]).toEqual({
        traceId: answered.id, queryClass: 'code', model: 'coder', outcome: 'success', score: 0.25, previous: null, source: 'human',
      });

      await a.setFeedback(answered.id, { score: 1, comment: 'better', time: Date.now(), source: 'human' });
      await a.setFeedback(failed.id, { score: 0, comment: null, time: Date.now(), source: 'human' });
      await expect.poll(() => heardByB.length).toBe(2);
      expect(heardByB).toEqual([
        { traceId: answered.id, queryClass: 'code', model: 'coder', outcome: 'success', score: 1, previous: 0.25, source: 'human' },
        { traceId: failed.id, queryClass: 'math', model: 'mathy', outcome: 'error', score: 0, previous: null, source: 'human' },
      ]);
      // Feedback that changed nothing (another key's trace, or no such trace) is not heard.
      expect(await b.setFeedback(answered.id, { score: 0, comment: null, time: Date.now(), source: 'human' }, 'team-b')).toBeUndefined();
      expect(await b.setFeedback('no-such-trace', { score: 0, comment: null, time: Date.now(), source: 'human' })).toBeUndefined();
      await a.setFeedback(failed.id, { score: 0.5, comment: null, time: Date.now(), source: 'human' });
      await expect.poll(() => heardByB.length).toBe(3);
      expect(heardByB.at(-1)).toMatchObject({ traceId: failed.id, score: 0.5, previous: 0 });
      // gw-a heard none of its own: what b commits after them reaches a (PostgreSQL delivers
      // notifications in commit order), and alone.
      await b.setFeedback(answered.id, { score: 0.75, comment: null, time: Date.now(), source: 'human' });
      await expect.poll(() => heardByA.some((e) => e.score === 0.75)).toBe(true);
      expect(heardByA.map((e) => e.score)).toEqual([0.25, 0.75]);
    });

    it('carries the feedback\'s source; feedback refused for its source is not heard', async () => {
      await openBoth();
      const judged = trace();
      await a.insert(judged);
      expect(await b.setFeedback(judged.id, { score: 0.5, comment: null, time: Date.now(), source: 'judge' })).toMatchObject({ applied: true });
      await expect.poll(() => heardByA.length).toBe(1);
      expect(heardByA[0]).toMatchObject({ traceId: judged.id, score: 0.5, previous: null, source: 'judge' });
      await b.setFeedback(judged.id, { score: 1, comment: null, time: Date.now(), source: 'human' });
      await expect.poll(() => heardByA.length).toBe(2);
      expect(heardByA[1]).toMatchObject({ score: 1, previous: 0.5, source: 'human' });
      expect(await b.setFeedback(judged.id, { score: 0, comment: null, time: Date.now(), source: 'implicit' })).toMatchObject({ applied: false, previous: 1 });
      await b.setFeedback(judged.id, { score: 0.75, comment: null, time: Date.now(), source: 'offline' });
      // Notifications come in commit order: once the offline one is heard, the refused one would have been.
      await expect.poll(() => heardByA.some((e) => e.source === 'offline')).toBe(true);
      expect(heardByA.map((e) => e.source)).toEqual(['judge', 'human', 'offline']);
    });

    it('listens again after its connection is cut, and its process goes on meanwhile', async () => {
      await openBoth();
      const answered = trace();
      await b.insert(answered);
      const cut = await db.query<{ n: number }>(
        `SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE application_name = 'tracegate-feedback' AND datname = current_database()`,
      );
      expect(cut[0]!.n).toBe(2);
      // What is posted while it is away arrives with the next sync instead; once it listens again,
      // feedback is heard at once. Each try posts a new score, until one of them is heard.
      const posted: number[] = [];
      await expect
        .poll(
          async () => {
            if (heardByA.some((e) => e.traceId === answered.id && posted.includes(e.score))) return true;
            const score = (posted.length + 1) / 1000;
            posted.push(score);
            await b.setFeedback(answered.id, { score, comment: null, time: Date.now(), source: 'human' });
            return false;
          },
          { timeout: 10_000, interval: 50 },
        )
        .toBe(true);
    });

    it('stops hearing once unsubscribed, and closes its connection with the store', async () => {
      await openBoth();
      const answered = trace();
      await a.insert(answered);
      const stop = a.onFeedback((e) => heardByA.push({ ...e, model: `second:${e.model}` }));
      await b.setFeedback(answered.id, { score: 1, comment: null, time: Date.now(), source: 'human' });
      await expect.poll(() => heardByA.length).toBe(2);
      stop();
      await b.setFeedback(answered.id, { score: 0, comment: null, time: Date.now(), source: 'human' });
      // A notification reaches every listener of the store in the same turn: once the first listener
      // has the second feedback, the one unsubscribed would have had it too.
      await expect.poll(() => heardByA.filter((e) => !e.model.startsWith('second:')).length).toBe(2);
      expect(heardByA.filter((e) => e.model.startsWith('second:'))).toHaveLength(1);
      await Promise.all([a.close(), b.close()]);
      const listening = await db.query<{ n: number }>(
        `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tracegate-feedback' AND datname = current_database()`,
      );
      expect(listening[0]!.n).toBe(0);
    });
  });
});
