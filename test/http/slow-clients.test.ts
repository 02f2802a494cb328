import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', timeoutMs: 5000 },
      // One connection: a second request waits for it.
      single: { baseURL: upstream.baseURL, model: 'single-model', timeoutMs: 300, connections: 1 },
    },
    router: { policy: 'learned', defaultModel: 'small', circuitBreaker: { failures: 0 } },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});
afterEach(() => {
  for (const model of ['small-model', 'single-model']) upstream.script(model, (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
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
