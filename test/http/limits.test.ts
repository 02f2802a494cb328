import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { RateLimiter } from '../../src/access/rate-limit.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { Gate } from '../helpers/judge.js';

const hash = (key: string) => sha256(key).toString('hex');
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream.close();
});

async function chat(gw: TestGateway, key: string | undefined, model = 'auto') {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as any };
}

describe('RateLimiter', () => {
  it('allows a burst of the per-minute figure, then refills evenly', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 3; i++) expect(limiter.take('k', 3, 0).allowed).toBe(true);
    const refused = limiter.take('k', 3, 0);
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 20 });
    expect(limiter.take('k', 3, 19_000).allowed).toBe(false);
    expect(limiter.take('k', 3, 20_001).allowed).toBe(true);
    expect(limiter.take('other', 3, 0).allowed).toBe(true);
    expect(limiter.take('k', 0, 0).allowed).toBe(true);
  });
});

describe('per-key requests per minute', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(upstream, {
      auth: { clientKeys: [{ name: 'a', sha256: hash('key-a') }, { name: 'b', sha256: hash('key-b'), requestsPerMinute: 5 }] },
      limits: { requestsPerMinute: 2 },
    });
  });
  afterAll(() => gw.stop());

  it('answers 429 in OpenAI shape with retry-after past the limit, per key, and records no trace for it', async () => {
    expect((await chat(gw, 'key-a')).status).toBe(200);
    expect((await chat(gw, 'key-a')).status).toBe(200);
    const before = await gw.gateway.store.count();
    const limited = await chat(gw, 'key-a');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.json.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
    expect(await gw.gateway.store.count()).toBe(before);
    // Key b has its own, larger limit.
    for (let i = 0; i < 5; i++) expect((await chat(gw, 'key-b')).status).toBe(200);
    expect((await chat(gw, 'key-b')).status).toBe(429);
  });
});

describe('maximum concurrent requests per model', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(upstream, {
      models: {
        small: { baseURL: upstream.baseURL, model: 'slow-small', maxConcurrent: 1 },
        large: { baseURL: upstream.baseURL, model: 'large-model' },
      },
      router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large' },
    });
  });
  afterAll(() => gw.stop());

  it('a pinned request to a full model gets 429 model_busy; a routed one goes to another model', async () => {
    // small's one slot is taken by a request its upstream holds until the gate opens.
    const gate = new Gate();
    upstream.script('slow-small', { kind: 'answer', wait: gate.promise });
    onTestFinished(() => gate.open());
    const first = chat(gw, undefined, 'small');
    await expect.poll(() => upstream.received.filter((r) => r.model === 'slow-small').length).toBe(1);
    const pinned = await chat(gw, undefined, 'small');
    expect(pinned.status).toBe(429);
    expect(pinned.json.error.code).toBe('model_busy');
    const routed = await chat(gw, undefined, 'auto');
    expect(routed.status).toBe(200);
    expect(routed.headers['x-router-model']).toBe('large');
    gate.open();
    expect((await first).status).toBe(200);
    // The slot is free again.
    expect((await chat(gw, undefined, 'small')).status).toBe(200);
  });
});

describe('slow clients', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(upstream, { limits: { headersTimeoutMs: 500, requestTimeoutMs: 1000 } });
  });
  afterAll(() => gw.stop());

  it('drops a connection that trickles its headers (slowloris)', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined); // the server hangs up mid-write: EPIPE/ECONNRESET are expected
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const started = Date.now();
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
    }, 100);
    const elapsed = await closed;
    clearInterval(drip);
    expect(elapsed).toBeLessThan(3000);
    expect(await gw.gateway.store.count()).toBe(0);
  });

  it('drops a connection that trickles its body', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined); // the server hangs up mid-write: EPIPE/ECONNRESET are expected
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const started = Date.now();
    let response = '';
    socket.on('data', (d) => (response += d.toString()));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 100);
    const elapsed = await closed;
    clearInterval(drip);
    expect(elapsed).toBeLessThan(4000);
    expect(response).not.toMatch(/^HTTP\/1\.1 5/);
  });

  it("answers a client too slow with its request with a 408 in OpenAI's shape", async () => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let response = '';
    socket.on('data', (d) => (response += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await closed;
    const [head, body] = response.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(head!.toLowerCase()).toContain('content-type: application/json');
    expect(JSON.parse(body!).error).toMatchObject({ type: 'invalid_request_error', code: 'request_timeout', param: null });
  });

  it('still serves normal clients', async () => {
    expect((await chat(gw, undefined)).status).toBe(200);
  });
});

describe('maximum concurrent requests per key', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway(upstream, {
      models: { small: { baseURL: upstream.baseURL, model: 'per-key-small' } },
      router: { policy: 'learned', defaultModel: 'small' },
      auth: { clientKeys: [{ name: 'one', sha256: hash('key-one'), maxConcurrent: 1 }, { name: 'two', sha256: hash('key-two') }] },
      limits: { maxConcurrentPerKey: 2 },
    });
  });
  afterAll(() => gw.stop());

  /** A stream request whose first bytes have arrived; `close()` hangs up mid-stream. */
  async function openStream(key: string) {
    const socket = connect(gw.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    const body = JSON.stringify({ model: 'small', stream: true, messages: [{ role: 'user', content: 'a long story' }] });
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await expect.poll(() => received.includes('data: ')).toBe(true);
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    return { close: () => socket.destroy() };
  }

  it('does not let one key hold more chat completions than its cap: 429 too_many_concurrent_requests; a client gone mid-stream frees its slot', async () => {
    // The upstream streams slowly: a request stays in flight until its client leaves.
    upstream.script('per-key-small', { kind: 'stream', parts: Array.from({ length: 200 }, () => 'word '), delayMs: 50 });
    const first = await openStream('key-one');
    const refused = await chat(gw, 'key-one', 'small');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json.error).toMatchObject({ type: 'requests', code: 'too_many_concurrent_requests', param: null });
    // Another key has slots of its own (limits.maxConcurrentPerKey: 2).
    const other = await openStream('key-two');
    const second = await openStream('key-two');
    expect((await chat(gw, 'key-two', 'small')).status).toBe(429);
    other.close();
    second.close();

    // The client hangs up mid-stream: its slot is free again.
    first.close();
    upstream.script('per-key-small', { kind: 'answer' });
    await expect.poll(async () => (await chat(gw, 'key-one', 'small')).status).toBe(200);
    // Answers that end, well or badly, give their slot back too.
    expect((await chat(gw, 'key-one', 'small')).status).toBe(200);
    expect((await chat(gw, 'key-one', 'nope')).status).toBe(404);
    upstream.script('per-key-small', { kind: 'status', status: 500 });
    expect((await chat(gw, 'key-one', 'small')).status).toBe(500);
    upstream.script('per-key-small', { kind: 'answer' });
    expect((await chat(gw, 'key-one', 'small')).status).toBe(200);
  });
});
