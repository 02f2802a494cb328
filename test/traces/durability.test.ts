import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { exited, spawnGateway, writeConfig } from '../helpers/process.js';

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

async function chat(url: string, stream: boolean): Promise<string | null> {
  try {
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', stream, messages: [{ role: 'user', content: 'durable?' }] }),
    });
    const text = await res.body.text();
    // Answered = the whole answer arrived: a complete JSON body, or a stream through [DONE].
    if (res.statusCode !== 200) return null;
    if (stream ? !text.includes('data: [DONE]') : !text.endsWith('}')) return null;
    return String(res.headers['x-trace-id']);
  } catch {
    return null;
  }
}

async function feedback(url: string, traceId: string): Promise<number> {
  const res = await request(`${url}/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trace_id: traceId, thumbs: 'up' }),
  });
  await res.body.dump();
  return res.statusCode;
}

describe('durability', () => {
  it('every answered trace survives SIGKILL under load and takes feedback after restart', async () => {
    const config = writeConfig(dir, upstream, { logging: { level: 'warn' } });
    // The logger is quiet at warn, so the listening line must still be printed: use info for startup.
    const gw = await spawnGateway(config, [], { TRACEGATE_LOG_LEVEL: 'info' });
    const answered: string[] = [];
    let running = true;
    const workers = Array.from({ length: 16 }, async (_, w) => {
      while (running) {
        const id = await chat(gw.url, w % 2 === 0);
        if (id) answered.push(id);
      }
    });
    // Killed under load, once it has answered a good number of requests.
    await expect.poll(() => answered.length, { timeout: 20_000 }).toBeGreaterThan(200);
    gw.child.kill('SIGKILL');
    running = false;
    await exited(gw.child);
    await Promise.all(workers);

    const again = await spawnGateway(config, [], { TRACEGATE_LOG_LEVEL: 'info' });
    try {
      const statuses = await Promise.all(answered.map((id) => feedback(again.url, id)));
      const missing = answered.filter((_, i) => statuses[i] !== 200);
      expect(missing).toEqual([]);
    } finally {
      again.child.kill('SIGTERM');
      await exited(again.child);
    }
  });

  it('a restarted gateway keeps its traces (stats count them)', async () => {
    const config = writeConfig(dir, upstream);
    const first = await spawnGateway(config);
    const before = (await (await request(`${first.url}/stats`)).body.json()) as { total_traces: number };
    for (let i = 0; i < 5; i++) await chat(first.url, false);
    first.child.kill('SIGTERM');
    expect((await exited(first.child)).code).toBe(0);
    const second = await spawnGateway(config);
    try {
      const after = (await (await request(`${second.url}/stats`)).body.json()) as { total_traces: number };
      expect(after.total_traces).toBe(before.total_traces + 5);
    } finally {
      second.child.kill('SIGTERM');
      await exited(second.child);
    }
  });

  it('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    upstream.script('small-model', { kind: 'answer', delayMs: 600 });
    try {
      const config = writeConfig(dir, upstream);
      const gw = await spawnGateway(config);
      const sent = upstream.received.length;
      const pending = chat(gw.url, false);
      // In flight: the upstream has the request (and answers it 600 ms later).
      await expect.poll(() => upstream.received.length, { interval: 5 }).toBe(sent + 1);
      gw.child.kill('SIGTERM');
      const id = await pending;
      expect(id).not.toBeNull();
      expect((await exited(gw.child)).code).toBe(0);
    } finally {
      upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    }
  });
});
