import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const MB = 1024 * 1024;
let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  // small keeps the default maxResponseBytes (32 MiB); large takes 1 MiB at most.
  gw = await startTestGateway(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', timeoutMs: 10_000 },
      large: { baseURL: upstream.baseURL, model: 'large-model', timeoutMs: 10_000, maxResponseBytes: MB },
    },
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', circuitBreaker: { failures: 0 } },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});
afterEach(() => {
  for (const model of ['small-model', 'large-model']) upstream.script(model, (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});

async function chat(model: string, stream = false) {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'tell me everything' }] }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('answers larger than maxResponseBytes are not collected', () => {
  it('fails a 50 MB answer as malformed (502) once past the default 32 MiB, and closes the upstream connection', async () => {
    upstream.script('small-model', { kind: 'big', bytes: 50 * MB });
    const written = upstream.written;
    const aborted = upstream.aborted;
    const res = await chat('small');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_bad_response');
    await expect.poll(() => upstream.aborted).toBe(aborted + 1);
    expect(upstream.written - written).toBeLessThan(45 * MB);
    const trace = await gw.gateway.store.get(String(res.headers['x-trace-id']));
    expect(trace).toMatchObject({ outcome: 'error', modelKey: 'small' });
    expect(trace!.error).toMatch(/larger than 33554432 bytes/);
  });

  it('fails a JSON answer to a stream request the same way', async () => {
    upstream.script('large-model', { kind: 'big', bytes: 50 * MB });
    const res = await chat('large', true);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_bad_response');
  });

  it('fails over a routed request whose answer is too large', async () => {
    upstream.script('small-model', { kind: 'big', bytes: 50 * MB });
    const res = await chat('auto');
    expect(res.status).toBe(200);
    expect(res.headers['x-router-reason']).toBe('failover');
    expect(JSON.parse(res.text).choices[0].message.content).toBe('answer from large-model');
  });

  it('keeps the first 64 KiB of a 50 MB error body and does not read the rest', async () => {
    upstream.script('small-model', { kind: 'big', bytes: 50 * MB, status: 500, contentType: 'text/plain' });
    const written = upstream.written;
    const aborted = upstream.aborted;
    const res = await chat('small');
    await expect.poll(() => upstream.aborted).toBe(aborted + 1);
    expect(upstream.written - written).toBeLessThan(45 * MB);
    expect(res.status).toBe(500);
    expect(res.text.length).toBeLessThan(64 * 1024);
    expect(JSON.parse(res.text).error.type).toBe('upstream_error');
  });

  it('answers within the limit as before', async () => {
    upstream.script('large-model', { kind: 'big', bytes: MB - 100 });
    const res = await chat('large');
    expect(res.status).toBe(200);
    expect(res.text.length).toBe(MB - 100);
  });
});
