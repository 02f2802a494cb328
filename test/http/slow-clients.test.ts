import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;
const sockets: Socket[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', timeoutMs: 5000 },
      // One connection: a second request waits for it.
      single: { baseURL: upstream.baseURL, model: 'single-model', timeoutMs: 300, connections: 1 },
    },
    router: { policy: 'learned', defaultModel: 'small', circuitBreaker: { failures: 0 } },
    limits: { writeStallMs: 300 },
  });
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await gw.stop();
  await upstream.close();
});
afterEach(() => {
  for (const model of ['small-model', 'single-model']) upstream.script(model, (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});

/** Sends a chat request on a raw socket that never reads its answer. */
function neverReading(body: unknown): Socket {
  const text = JSON.stringify(body);
  const socket = connect(gw.port, '127.0.0.1');
  sockets.push(socket);
  socket.pause();
  socket.on('error', () => {});
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  return socket;
}

function connections(): Promise<number> {
  return new Promise((resolve, reject) => gw.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

describe('a client that stops reading', () => {
  it('is cut after limits.writeStallMs without a drain, the upstream freed and the trace cancelled with the reason', async () => {
    const event = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'x'.repeat(4000) } }] })}\n\n`;
    upstream.script('small-model', { kind: 'raw', chunks: [event], endless: true });
    const aborted = upstream.aborted;
    neverReading({ model: 'small', stream: true, messages: [{ role: 'user', content: 'an endless story' }] });
    await expect.poll(() => upstream.aborted, { timeout: 10_000 }).toBe(aborted + 1);
    await expect
      .poll(async () => (await gw.gateway.store.recent(1))[0], { timeout: 5000 })
      .toMatchObject({ modelKey: 'small', outcome: 'cancelled', error: 'client stopped reading for 300 ms' });
  });

  it('is cut after limits.writeStallMs when it does not read a large whole answer', async () => {
    upstream.script('small-model', { kind: 'big', bytes: 16 * 1024 * 1024 });
    const before = await connections();
    const socket = neverReading({ model: 'small', messages: [{ role: 'user', content: 'a long answer' }] });
    await expect.poll(connections).toBe(before + 1);
    // The answer is whole and traced before it is sent; then the connection is cut.
    await expect.poll(async () => (await gw.gateway.store.recent(1))[0]?.outcome, { timeout: 5000 }).toBe('success');
    await expect.poll(connections, { timeout: 10_000 }).toBe(before);
    socket.destroy();
  });
});

describe('a request waiting for a connection of a full pool', () => {
  it("fails at its model's timeoutMs instead of waiting for the connection", async () => {
    // The one connection is busy with a stream that trickles an event every 100 ms for 3 s.
    const event = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'tick' } }] })}\n\n`;
    const chunks = [...Array.from({ length: 30 }, () => event), 'data: [DONE]\n\n'];
    upstream.script('single-model', (r) => (r.body.stream ? { kind: 'raw', chunks, gapMs: 100 } : { kind: 'answer' }));
    {
      const first = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'single', stream: true, messages: [{ role: 'user', content: 'stream' }] }),
      });
      expect(first.statusCode).toBe(200);
      const started = Date.now();
      const second = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'single', messages: [{ role: 'user', content: 'queued' }] }),
      });
      const elapsed = Date.now() - started;
      expect(second.statusCode).toBe(504);
      expect(((await second.body.json()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
      expect(elapsed).toBeLessThan(2000);
      expect(await first.body.text()).toContain('data: [DONE]');
      // The queued request never reached the upstream, and the connection it would have taken serves the next one.
      expect(upstream.received.filter((r) => r.raw.includes('queued'))).toHaveLength(0);
      const third = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'single', messages: [{ role: 'user', content: 'after' }] }),
      });
      expect(third.statusCode).toBe(200);
      await third.body.dump();
    }
  });
});
