import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { exited } from '../helpers/process.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { startTcpProxy, viaProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { getJson, postJson, startMember, stopMember, until, type FleetMember } from './fleet.js';

/**
 * Losing nothing: an instance killed under load, and the database cut off mid-traffic (a TCP proxy
 * owned by the test stands between the gateway and PostgreSQL).
 */

const pgSkip = await pgUnavailable();

let upstream: FakeUpstream;
let dir: string;

/** One chat request; the trace id when the whole answer arrived (a JSON body, or a stream through [DONE]), else null. */
async function chat(url: string, stream: boolean): Promise<string | null> {
  try {
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', stream, messages: [{ role: 'user', content: 'durable across the fleet?' }] }),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    if (stream ? !text.includes('data: [DONE]') : !text.endsWith('}')) return null;
    return String(res.headers['x-trace-id']);
  } catch {
    return null;
  }
}

function config(url: string) {
  const model = (name: string) => ({ baseURL: upstream.baseURL, model: name, timeoutMs: 5000 });
  return {
    database: { url, poolSize: 4, connectTimeoutMs: 500 },
    models: { small: model('small-model'), large: model('large-model') },
    router: { policy: 'adaptive', seed: 1, syncIntervalMs: 500 },
  };
}

/** Traffic from `workers` loops to `url` while `running()`: answered trace ids, and the requests that got no answer. */
function load(url: string, workers: number, running: () => boolean) {
  const answered: string[] = [];
  let failed = 0;
  const done = Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (running()) {
        const id = await chat(url, w % 2 === 0);
        if (id) answered.push(id);
        else failed++;
      }
    }),
  );
  return { answered, failed: () => failed, done };
}

async function missingFrom(db: TestDatabase, ids: string[]): Promise<string[]> {
  const rows = await db.query<{ id: string }>('SELECT id FROM traces WHERE id = ANY($1)', [ids]);
  const found = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !found.has(id));
}

describe.skipIf(pgSkip !== null)(`a fleet on PostgreSQL loses no answered trace${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  beforeAll(async () => {
    upstream = await startFakeUpstream();
    dir = tempDir();
  });
  afterAll(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGKILL of one instance under load: every answered trace is in PostgreSQL, and the other keeps serving', async () => {
    const db = await createTestDatabase();
    const members: FleetMember[] = [];
    try {
      members.push(await startMember(dir, 'kill-a', config(db.url)), await startMember(dir, 'kill-b', config(db.url)));
      const [a, b] = members as [FleetMember, FleetMember];
      let aRunning = true;
      let bRunning = true;
      const onA = load(a.url, 8, () => aRunning);
      const onB = load(b.url, 8, () => bRunning);
      // Killed under load, once it has answered a good number of requests.
      await expect.poll(() => onA.answered.length, { timeout: 20_000 }).toBeGreaterThan(100);
      a.child.kill('SIGKILL');
      aRunning = false;
      await exited(a.child);
      await onA.done;
      // gw-b goes on serving while and after gw-a dies.
      const beforeKill = onB.answered.length;
      // Keeps serving: answers keep coming after the kill.
      await expect.poll(() => onB.answered.length - beforeKill, { timeout: 20_000 }).toBeGreaterThan(50);
      bRunning = false;
      await onB.done;
      expect(onB.failed()).toBe(0);
      expect(await missingFrom(db, [...onA.answered, ...onB.answered])).toEqual([]);
      expect((await getJson(`${b.url}/health`)).body).toMatchObject({ status: 'ok' });
    } finally {
      for (const m of members) await stopMember(m);
      await db.drop();
    }
  }, 60_000);

  it('database cut off mid-traffic: every request answered, /health degraded; restored: every spooled trace arrives, none twice', async () => {
    const db = await createTestDatabase();
    const proxy: TcpProxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    let gw: FleetMember | undefined;
    try {
      gw = await startMember(dir, 'cut', config(viaProxy(db.url, proxy)));
      let running = true;
      const traffic = load(gw.url, 8, () => running);
      await expect.poll(() => traffic.answered.length, { timeout: 20_000 }).toBeGreaterThan(50);
      proxy.cut();
      const cutAt = traffic.answered.length;
      // Answers go on while the database is away, and /health says so.
      await expect.poll(() => traffic.answered.length - cutAt, { timeout: 20_000 }).toBeGreaterThan(50);
      await expect.poll(async () => (await getJson<{ status: string }>(`${gw!.url}/health`)).body.status, { timeout: 20_000 }).toBe('degraded');
      const health = await getJson<{ status: string; spool_depth: number }>(`${gw.url}/health`);
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('degraded');
      expect(health.body.spool_depth).toBeGreaterThan(0);
      const metrics = await (await request(`${gw.url}/metrics`)).body.text();
      const depth = Number(/^tracegate_spool_depth (\d+)/m.exec(metrics)?.[1]);
      expect(depth).toBeGreaterThan(0);
      // Reads of the database wait for it (503); feedback on a trace still in the spool is kept with it.
      expect((await request(`${gw.url}/stats`)).statusCode).toBe(503);
      expect(await postJson(`${gw.url}/feedback`, { trace_id: traffic.answered[0], thumbs: 'up' })).toBe(503);
      const spooled = traffic.answered[traffic.answered.length - 1]!;
      expect(await postJson(`${gw.url}/feedback`, { trace_id: spooled, feedback: 0.75 })).toBe(200);
      proxy.restore();
      // Traffic goes on through the restore.
      const restoredAt = traffic.answered.length;
      await expect.poll(() => traffic.answered.length - restoredAt, { timeout: 20_000 }).toBeGreaterThan(50);
      running = false;
      await traffic.done;
      expect(traffic.failed()).toBe(0);
      await until(async () => (await getJson<{ status: string }>(`${gw!.url}/health`)).body.status === 'ok', 15_000, '/health ok again');
      const after = await (await request(`${gw.url}/metrics`)).body.text();
      expect(/^tracegate_spool_depth (\d+)/m.exec(after)?.[1]).toBe('0');
      expect(await missingFrom(db, traffic.answered)).toEqual([]);
      expect((await db.query<{ feedback: number }>('SELECT feedback FROM traces WHERE id = $1', [spooled]))[0]?.feedback).toBe(0.75);
      const [{ total, distinct }] = (await db.query<{ total: number; distinct: number }>(
        'SELECT COUNT(*)::int AS total, COUNT(DISTINCT id)::int AS distinct FROM traces',
      )) as [{ total: number; distinct: number }];
      expect(total).toBe(distinct);
      expect(total).toBeGreaterThanOrEqual(traffic.answered.length);
      expect(gw.output()).toMatch(/PostgreSQL unreachable: traces go to the local spool/);
    } finally {
      if (gw) await stopMember(gw);
      await proxy.close();
      await db.drop();
    }
  }, 60_000);
});
