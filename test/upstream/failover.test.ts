import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { Gate } from '../helpers/judge.js';
import { freePort } from '../helpers/ports.js';

let upstream: FakeUpstream;
let gw: TestGateway;
let deadURL: string;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  deadURL = `http://127.0.0.1:${await freePort()}/v1`;
  gw = await startTestGateway(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', timeoutMs: 400 },
      large: { baseURL: upstream.baseURL, model: 'large-model', timeoutMs: 400 },
      dead: { baseURL: deadURL, model: 'dead-model', timeoutMs: 400 },
    },
    // The circuit breaker is tested on its own below; here every failure must reach the failover path.
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', maxAttempts: 2, circuitBreaker: { failures: 0 } },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});
afterEach(() => {
  upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
  upstream.script('large-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});

async function chat(model: string, stream = false) {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hello gateway' }] }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

async function tracesOf(requestTraceId: string) {
  const trace = await gw.gateway.store.get(requestTraceId);
  const all = await gw.gateway.store.list({});
  return all.filter((t) => t.requestId === trace!.requestId);
}

describe('failover for routed requests', () => {
  for (const [name, behaviour, outcome] of [
    ['a 500', { kind: 'status', status: 500 }, 'error'],
    ['a 429', { kind: 'status', status: 429 }, 'refused'],
    ['a timeout', { kind: 'hang' }, 'timeout'],
    ['a malformed body', { kind: 'malformed' }, 'error'],
    ['a 200 whose body is not valid JSON', { kind: 'status', status: 200, body: '{"id": "chatcmpl-1", "choices": [}' }, 'error'],
    ['a dropped connection', { kind: 'destroy' }, 'error'],
  ] as const) {
    it(`moves to the next model after ${name}, tracing both attempts`, async () => {
      upstream.script('small-model', behaviour);
      const res = await chat('auto');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text).choices[0].message.content).toBe('answer from large-model');
      expect(res.headers['x-router-reason']).toBe('failover');
      expect(res.headers['x-router-model']).toBe('large');
      const attempts = await tracesOf(String(res.headers['x-trace-id']));
      expect(attempts.map((t) => [t.modelKey, t.attempt, t.outcome])).toEqual([
        ['small', 1, outcome],
        ['large', 2, 'success'],
      ]);
      expect(attempts[1]!.reason).toBe('failover');
    });
  }

  it('fails over a stream that failed before its first byte', async () => {
    upstream.script('small-model', { kind: 'status', status: 503 });
    const res = await chat('auto', true);
    expect(res.status).toBe(200);
    expect(res.headers['x-router-reason']).toBe('failover');
    expect(res.text).toContain('large-model');
    expect(res.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('answers in OpenAI shape with the last error when every attempt fails', async () => {
    upstream.script('small-model', { kind: 'status', status: 500 });
    upstream.script('large-model', { kind: 'status', status: 502, body: { error: { message: 'bad gateway upstream', type: 'server_error', param: null, code: 'x' } } });
    const res = await chat('auto');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.message).toBe('bad gateway upstream');
    const attempts = await tracesOf(String(res.headers['x-trace-id']));
    expect(attempts.map((t) => t.outcome)).toEqual(['error', 'error']);
  });
});

describe('pinned requests do not fail over', () => {
  it('unreachable upstream → 502', async () => {
    const res = await chat('dead');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error).toMatchObject({ code: 'upstream_unreachable', type: 'upstream_error' });
    const trace = await gw.gateway.store.get(String(res.headers['x-trace-id']));
    expect(trace).toMatchObject({ outcome: 'error', modelKey: 'dead', reason: 'pinned' });
  });

  it('timeout → 504 within the model timeout', async () => {
    upstream.script('small-model', { kind: 'hang' });
    const started = Date.now();
    const res = await chat('small');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.text).error.code).toBe('upstream_timeout');
    const trace = await gw.gateway.store.get(String(res.headers['x-trace-id']));
    expect(trace?.outcome).toBe('timeout');
  });

  it("an upstream 4xx passes through with the upstream's status and error", async () => {
    upstream.script('small-model', {
      kind: 'status',
      status: 400,
      body: { error: { message: 'context too long', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } },
    });
    const err = await gw.client.chat.completions
      .create({ model: 'small', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e as { status: number; code: string; message: string });
    expect(err).toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });

  it('an upstream 5xx that is not JSON is wrapped in OpenAI shape', async () => {
    upstream.script('small-model', { kind: 'status', status: 503, body: 'upstream overloaded' });
    const res = await chat('small');
    expect(res.status).toBe(503);
    const body = JSON.parse(res.text);
    expect(body.error.message).toContain('upstream overloaded');
    expect(body.error.type).toBe('upstream_error');
  });

  it('a malformed upstream body → 502', async () => {
    upstream.script('small-model', { kind: 'malformed' });
    const res = await chat('small');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_bad_response');
  });

  it('an upstream 200 whose body is not valid JSON is malformed, not a success → 502', async () => {
    for (const body of ['{"id": "chatcmpl-1", "choices": [}', '{not json}', '{"a": 1,}', '{"a": 1}{"b": 2}']) {
      upstream.script('small-model', { kind: 'status', status: 200, body });
      const res = await chat('small');
      expect(res.status).toBe(502);
      expect(JSON.parse(res.text).error.code).toBe('upstream_bad_response');
      const trace = await gw.gateway.store.get(String(res.headers['x-trace-id']));
      expect(trace?.outcome).toBe('error');
    }
  });
});

describe('an upstream that fails mid-stream', () => {
  /** Reads a stream from the gateway until it ends or breaks; the events seen, and whether it broke. */
  async function streamFromGateway() {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', stream: true, messages: [{ role: 'user', content: 'tell me more' }] }),
    });
    let text = '';
    let broke = false;
    try {
      for await (const chunk of res.body) text += (chunk as Buffer).toString('utf8');
    } catch {
      broke = true;
    }
    return { status: res.statusCode, traceId: res.headers['x-trace-id'] as string, events: text.split('\n\n').filter(Boolean), broke };
  }

  it('cuts the stream to the client (no [DONE]) and records an error when the upstream drops it', async () => {
    // Spaced out, so the first parts have left the upstream before it drops the connection.
    upstream.script('small-model', { kind: 'stream', parts: ['one', ' two', ' three', ' four'], delayMs: 50, failAfter: 2 });
    const seen = await streamFromGateway();
    expect(seen.status).toBe(200);
    expect(seen.broke).toBe(true);
    expect(seen.events.length).toBeGreaterThanOrEqual(2); // the role chunk and 'one' at least
    expect(seen.events.join('')).toContain('"one"');
    expect(seen.events.join('')).not.toContain(' three');
    expect(seen.events.join('')).not.toContain('[DONE]');
    const traces = await tracesOf(seen.traceId);
    expect(traces).toHaveLength(1); // bytes had reached the client: no failover
    expect(traces[0]).toMatchObject({ modelKey: 'small', outcome: 'error' });
    expect(traces[0]!.error).toMatch(/^stream interrupted/);
  });

  it('cuts the stream and records a timeout when the upstream stalls past the model timeout', async () => {
    upstream.script('small-model', { kind: 'stream', parts: ['late'], delayMs: 1500 });
    const started = Date.now();
    const seen = await streamFromGateway();
    expect(Date.now() - started).toBeLessThan(1400);
    expect(seen.broke).toBe(true);
    expect(seen.events).toHaveLength(1); // the role chunk only
    const traces = await tracesOf(seen.traceId);
    expect(traces).toHaveLength(1);
    expect(traces[0]).toMatchObject({ modelKey: 'small', outcome: 'timeout' });
  });
});

describe('client disconnect', () => {
  it('aborts the upstream call mid-stream and records cancelled', async () => {
    upstream.script('small-model', { kind: 'stream', parts: Array.from({ length: 40 }, (_, i) => `w${i} `), delayMs: 50 });
    const abortedBefore = upstream.aborted;
    const ac = new AbortController();
    const stream = await gw.client.chat.completions.create(
      { model: 'auto', stream: true, messages: [{ role: 'user', content: 'a long story please' }] },
      { signal: ac.signal },
    );
    let seen = 0;
    try {
      for await (const _ of stream) {
        if (++seen === 3) ac.abort();
      }
    } catch {
      // the SDK may end the iteration or throw on abort; either way the client left
    }
    expect(seen).toBeLessThan(40);
    await expect.poll(() => upstream.aborted, { timeout: 3000 }).toBeGreaterThan(abortedBefore);
    await expect
      .poll(async () => (await gw.gateway.store.recent(1))[0]?.outcome, { timeout: 3000 })
      .toBe('cancelled');
  });

  it('aborts a non-stream upstream call too', async () => {
    // The upstream holds the answer until the test ends (the gateway's timeout is 400 ms).
    const held = new Gate();
    upstream.script('small-model', { kind: 'answer', wait: held.promise });
    onTestFinished(() => held.open());
    const ac = new AbortController();
    const sent = upstream.received.length;
    const pending = gw.client.chat.completions.create(
      { model: 'small', messages: [{ role: 'user', content: 'slow one' }] },
      { signal: ac.signal },
    );
    // The client leaves while the upstream holds its request.
    await expect.poll(() => upstream.received.slice(sent).some((r) => r.raw.includes('slow one')), { interval: 5 }).toBe(true);
    ac.abort();
    await expect(pending).rejects.toThrow();
    await expect
      .poll(async () => (await gw.gateway.store.recent(1))[0]?.outcome, { timeout: 3000 })
      .toBe('cancelled');
  });
});

describe('circuit breaker', () => {
  it("pinned requests' 4xx (a 429 too) and malformed answers do not put a model in cooldown; their 5xx do", async () => {
    const local = await startTestGateway(upstream, {
      router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', circuitBreaker: { failures: 2, cooldownSeconds: 60 } },
    });
    try {
      const ask = async (model: string) => {
        const res = await request(`${local.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.body.dump();
        return { status: res.statusCode, reason: res.headers['x-router-reason'], model: res.headers['x-router-model'] };
      };
      for (const failing of [
        { kind: 'status', status: 429 },
        { kind: 'status', status: 400 },
        { kind: 'malformed' },
      ] as const) {
        upstream.script('small-model', failing);
        for (let i = 0; i < 3; i++) expect((await ask('small')).status).toBeGreaterThanOrEqual(400);
      }
      upstream.script('small-model', { kind: 'answer' });
      const routed = await ask('auto');
      expect(routed).toMatchObject({ status: 200, model: 'small' });
      expect(routed.reason).not.toBe('fallback');
      upstream.script('small-model', { kind: 'status', status: 503 });
      for (let i = 0; i < 2; i++) expect((await ask('small')).status).toBe(503);
      upstream.script('small-model', { kind: 'answer' });
      expect(await ask('auto')).toMatchObject({ status: 200, reason: 'fallback', model: 'large' });
    } finally {
      await local.stop();
    }
  });

  it('takes a model that keeps failing out of routing for the cooldown; pinned requests still reach it', async () => {
    const local = await startTestGateway(upstream, {
      router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', circuitBreaker: { failures: 3, cooldownSeconds: 60 } },
    });
    try {
      upstream.script('small-model', { kind: 'status', status: 500 });
      const ask = async (model: string) => {
        const res = await request(`${local.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.body.dump();
        return { status: res.statusCode, reason: res.headers['x-router-reason'], model: res.headers['x-router-model'] };
      };
      for (let i = 0; i < 3; i++) expect(await ask('auto')).toMatchObject({ status: 200, reason: 'failover', model: 'large' });
      const smallCalls = upstream.received.filter((r) => r.model === 'small-model').length;
      // Open: routed requests skip small without trying it.
      expect(await ask('auto')).toMatchObject({ status: 200, reason: 'fallback', model: 'large' });
      expect(upstream.received.filter((r) => r.model === 'small-model').length).toBe(smallCalls);
      expect((await ask('small')).status).toBe(500);
      const stats = (await (await request(`${local.url}/stats`)).body.json()) as { models: Record<string, { cooldown_seconds: number }> };
      expect(stats.models.small!.cooldown_seconds).toBeGreaterThan(50);
      expect(stats.models.large!.cooldown_seconds).toBe(0);
    } finally {
      await local.stop();
    }
  });
});
