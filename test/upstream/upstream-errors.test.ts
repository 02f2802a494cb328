import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { pino } from 'pino';
import { startGateway } from '../../src/app/server.js';
import { startFakeUpstream, type Behaviour, type FakeUpstream, type ReceivedRequest } from '../helpers/fake-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../helpers/gateway.js';
import { MIN_LEARNED_BYTES } from '../../src/routing/size-limits.js';

/*
 * Upstream errors as OpenAI's API gives them, driven over HTTP with the openai SDK as the client:
 * a refused provider key (401), a rate limit (429 with retry-after or x-ratelimit-reset-*), a
 * request past the model's context window (400 context_length_exceeded), and models that keep failing.
 */

const GOOD_KEY = 'sk-good-provider-key';
/** Past this many bytes of request body, the `tiny` model answers context_length_exceeded. */
const TINY_CONTEXT_BYTES = 400;

/** An upstream that behaves as OpenAI's: 401 for a key it does not know, 400 past its context window, then `then`. */
function openaiLike(then: (req: ReceivedRequest, n: number) => Behaviour, contextBytes = Infinity) {
  return (req: ReceivedRequest, n: number): Behaviour => {
    if (req.headers.authorization !== `Bearer ${GOOD_KEY}`) {
      return {
        kind: 'status',
        status: 401,
        body: { error: { message: 'Incorrect API key provided: sk-bad. You can find your API key at https://platform.openai.com/account/api-keys.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
      };
    }
    if (req.raw.length > contextBytes) {
      return {
        kind: 'status',
        status: 400,
        body: {
          error: {
            message: "This model's maximum context length is 100 tokens. However, your messages resulted in 180 tokens. Please reduce the length of the messages.",
            type: 'invalid_request_error',
            param: 'messages',
            code: 'context_length_exceeded',
          },
        },
      };
    }
    return then(req, n);
  };
}
const answers = (req: ReceivedRequest): Behaviour => (req.body.stream ? { kind: 'stream' } : { kind: 'answer' });
const rateLimited = (headers: Record<string, string>): Behaviour => ({
  kind: 'status',
  status: 429,
  headers,
  body: { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
});

let upstream: FakeUpstream;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  while (stops.length > 0) await stops.pop()!();
});
afterAll(async () => {
  await upstream.close();
});

async function gateway(models: Record<string, Record<string, unknown>>, router: Record<string, unknown>): Promise<TestGateway> {
  const full: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(models)) full[key] = { baseURL: upstream.baseURL, model: `${key}-model`, apiKey: GOOD_KEY, timeoutMs: 2000, ...m };
  const gw = await startTestGateway(upstream, { models: full, router: { circuitBreaker: { failures: 3, cooldownSeconds: 60 }, ...router } });
  stops.push(() => gw.stop());
  return gw;
}

async function chat(gw: TestGateway, model: string, stream: boolean, content = 'hello gateway') {
  const { data, response } = await (stream
    ? gw.client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content }] }).withResponse()
    : gw.client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse());
  let text = '';
  if (stream) for await (const chunk of data as AsyncIterable<OpenAI.ChatCompletionChunk>) text += chunk.choices[0]?.delta.content ?? '';
  else text = (data as OpenAI.ChatCompletion).choices[0]!.message.content ?? '';
  return { text, model: response.headers.get('x-router-model'), reason: response.headers.get('x-router-reason'), traceId: response.headers.get('x-trace-id')! };
}

async function attemptsOf(gw: TestGateway, traceId: string) {
  const trace = await gw.gateway.store.get(traceId);
  return (await gw.gateway.store.list({})).filter((t) => t.requestId === trace!.requestId).sort((a, b) => a.attempt - b.attempt);
}

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

for (const stream of [false, true]) {
  const mode = stream ? 'streamed' : 'not streamed';

  describe(`a refused provider key (${mode})`, () => {
    it('a routed request fails over, and the model goes into cooldown', async () => {
      upstream.script('a-model', openaiLike(answers));
      upstream.script('b-model', openaiLike(answers));
      const gw = await gateway({ a: { apiKey: 'sk-bad' }, b: {} }, { policy: 'learned', defaultModel: 'a', fallbackModel: 'b' });
      const first = await chat(gw, 'auto', stream);
      expect(first).toMatchObject({ model: 'b', reason: 'failover' });
      expect(first.text).toContain('b-model');
      const attempts = await attemptsOf(gw, first.traceId);
      expect(attempts.map((t) => [t.modelKey, t.outcome, t.status])).toEqual([
        ['a', 'refused', 401],
        ['b', 'success', 200],
      ]);
      expect(attempts[0]!.error).toContain('provider key refused');
      expect(gw.gateway.health.isAvailable('a')).toBe(false);
      const sentToA = upstream.received.filter((r) => r.model === 'a-model').length;
      expect((await chat(gw, 'auto', stream)).model).toBe('b');
      expect(upstream.received.filter((r) => r.model === 'a-model').length).toBe(sentToA);
    });

    it('a pinned request gets a 502 upstream_auth_failed naming the model, never a 401', async () => {
      upstream.script('a-model', openaiLike(answers));
      const gw = await gateway({ a: { apiKey: 'sk-bad' }, b: {} }, { policy: 'learned', defaultModel: 'b' });
      const err = await apiError(chat(gw, 'a', stream));
      expect(err.status).toBe(502);
      expect(err.code).toBe('upstream_auth_failed');
      expect(err.message).toContain("'a'");
    });
  });

  describe(`a rate limit (${mode})`, () => {
    for (const [name, headers] of [
      ['retry-after in seconds', () => ({ 'retry-after': '0.2' })],
      ['retry-after as an HTTP date', () => ({ 'retry-after': new Date(Date.now() + 1000).toUTCString() })],
      ['x-ratelimit-reset-requests', () => ({ 'x-ratelimit-reset-requests': '200ms', 'x-ratelimit-reset-tokens': '20ms' })],
    ] as const) {
      it(`a short wait (${name}) is waited out and the same model tried once more`, async () => {
        let calls = 0;
        upstream.script('a-model', openaiLike((req) => (++calls === 1 ? rateLimited(headers()) : answers(req))));
        upstream.script('b-model', openaiLike(answers));
        const gw = await gateway({ a: {}, b: {} }, { policy: 'learned', defaultModel: 'a', fallbackModel: 'b' });
        const res = await chat(gw, 'auto', stream);
        expect(res).toMatchObject({ model: 'a', reason: 'retry' });
        const attempts = await attemptsOf(gw, res.traceId);
        expect(attempts.map((t) => [t.modelKey, t.outcome, t.status])).toEqual([
          ['a', 'refused', 429],
          ['a', 'success', 200],
        ]);
      });
    }

    it('a long wait fails over (routed)', async () => {
      upstream.script('a-model', openaiLike(() => rateLimited({ 'retry-after': '30' })));
      upstream.script('b-model', openaiLike(answers));
      const gw = await gateway({ a: {}, b: {} }, { policy: 'learned', defaultModel: 'a', fallbackModel: 'b' });
      const started = Date.now();
      const res = await chat(gw, 'auto', stream);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(res).toMatchObject({ model: 'b', reason: 'failover' });
    });

    it("a long wait answers 429 with the upstream's retry-after (pinned)", async () => {
      upstream.script('a-model', openaiLike(() => rateLimited({ 'retry-after': '30' })));
      const gw = await gateway({ a: {}, b: {} }, { policy: 'learned', defaultModel: 'b' });
      const err = await apiError(chat(gw, 'a', stream));
      expect(err.status).toBe(429);
      expect(err.headers?.get('retry-after')).toBe('30');
    });

    it('a second 429 after the wait is not waited out again', async () => {
      upstream.script('a-model', openaiLike(() => rateLimited({ 'retry-after': '0.1' })));
      const gw = await gateway({ a: {}, b: {} }, { policy: 'learned', defaultModel: 'b' });
      const before = upstream.received.filter((r) => r.model === 'a-model').length;
      const err = await apiError(chat(gw, 'a', stream));
      expect(err.status).toBe(429);
      expect(upstream.received.filter((r) => r.model === 'a-model').length - before).toBe(2);
    });
  });

  describe(`a request too big for the model (${mode})`, () => {
    const big = 'x'.repeat(TINY_CONTEXT_BYTES * 2);

    it('a routed request fails over to a model that can take it; the trace says why', async () => {
      upstream.script('tiny-model', openaiLike(answers, TINY_CONTEXT_BYTES));
      upstream.script('wide-model', openaiLike(answers));
      const gw = await gateway({ tiny: {}, wide: {} }, { policy: 'learned', defaultModel: 'tiny', fallbackModel: 'wide' });
      const res = await chat(gw, 'auto', stream, big);
      expect(res).toMatchObject({ model: 'wide', reason: 'failover' });
      const attempts = await attemptsOf(gw, res.traceId);
      expect(attempts[0]).toMatchObject({ modelKey: 'tiny', outcome: 'refused', status: 400 });
      expect(attempts[0]!.error).toContain('maximum context length');
      // Not a failure of the model: it stays in routing.
      expect(gw.gateway.health.isAvailable('tiny')).toBe(true);
    });

    it("a pinned request gets the upstream's error as it was", async () => {
      upstream.script('tiny-model', openaiLike(answers, TINY_CONTEXT_BYTES));
      const gw = await gateway({ tiny: {}, wide: {} }, { policy: 'learned', defaultModel: 'wide' });
      const err = await apiError(chat(gw, 'tiny', stream, big));
      expect(err.status).toBe(400);
      expect(err.code).toBe('context_length_exceeded');
    });
  });
}

describe('a model that cannot take a request that big', () => {
  it('is learned: the next request at least as big goes straight to a model that can take it', async () => {
    const window = 3 * MIN_LEARNED_BYTES;
    upstream.script('tiny-model', openaiLike(answers, window));
    upstream.script('wide-model', openaiLike(answers));
    const gw = await gateway({ tiny: {}, wide: {} }, { policy: 'learned', defaultModel: 'tiny', fallbackModel: 'wide' });
    const big = 'x'.repeat(window * 2);
    const sentToTiny = () => upstream.received.filter((r) => r.model === 'tiny-model').length;
    expect(await chat(gw, 'auto', false, big)).toMatchObject({ model: 'wide', reason: 'failover' });
    const before = sentToTiny();
    for (const stream of [false, true]) {
      const res = await chat(gw, 'auto', stream, `${big} and more`);
      expect(res.model).toBe('wide');
      expect(res.reason).not.toBe('failover');
    }
    expect(sentToTiny()).toBe(before);
    // A request that fits still goes to the default model.
    expect((await chat(gw, 'auto', false, 'short')).model).toBe('tiny');
    expect(gw.gateway.sizeLimits.limit('tiny')).toBeGreaterThan(window);
    const stats = (await (await fetch(`${gw.url}/stats`)).json()) as { models: Record<string, { size_limit_bytes?: number }> };
    expect(stats.models.tiny!.size_limit_bytes).toBe(gw.gateway.sizeLimits.limit('tiny'));
    expect(stats.models.wide!.size_limit_bytes).toBeUndefined();
    const attempts = await gw.gateway.store.list({});
    expect(attempts.every((t) => t.requestBytes !== null && t.requestBytes > 0)).toBe(true);
  });
});

describe('capacity is not quality', () => {
  for (const policy of ['adaptive', 'contextual']) {
    it(`refused keys, rate limits and requests too big add no quality evidence, online or rebuilt (${policy})`, async () => {
      const window = 3 * MIN_LEARNED_BYTES;
      let call = 0;
      // a: a rate limit with a long wait, a request too big, then a 500 (a fault, which does count).
      upstream.script('a-model', openaiLike((req) => (++call === 1 ? rateLimited({ 'retry-after': '30' }) : call === 2 ? { kind: 'status', status: 500 } : answers(req)), window));
      upstream.script('b-model', openaiLike(answers));
      upstream.script('k-model', openaiLike(answers));
      const gw = await gateway({ a: {}, b: {}, k: { apiKey: 'sk-bad' } }, { policy, defaultModel: 'a', fallbackModel: 'b', maxAttempts: 3 });
      const pinned = async (model: string, content = 'hello gateway') => gw.client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).catch(() => null);
      await pinned('a');
      await pinned('a', 'x'.repeat(window * 2));
      await pinned('k');
      const outcomes = (await gw.gateway.store.list({})).sort((x, y) => (x.id < y.id ? -1 : 1)).map((t) => [t.modelKey, t.outcome, t.status]);
      expect(outcomes).toEqual([
        ['a', 'refused', 429],
        ['a', 'refused', 400],
        ['k', 'refused', 401],
      ]);
      const quality = await gw.gateway.store.qualityEvidence({});
      expect(quality.filter((q) => q.model === 'a' || q.model === 'k')).toEqual([]);
      // There was no answer to rate.
      const [refused] = await gw.gateway.store.list({});
      const rated = await fetch(`${gw.url}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ trace_id: refused!.id, thumbs: 'down' }) });
      expect(rated.status).toBe(409);
      expect(((await rated.json()) as { error: { code: string } }).error.code).toBe('trace_not_rateable');
      const online = gw.gateway.policy.snapshot();
      await gw.gateway.policy.updateFromTraces();
      expect(gw.gateway.policy.snapshot().classes).toEqual(online.classes);
      // A fault is quality evidence: the same reads see it.
      await pinned('a');
      const after = await gw.gateway.store.qualityEvidence({});
      expect(after.filter((q) => q.model === 'a').map((q) => q.failures)).toEqual([1]);
    });
  }
});

describe('a request deadline (router.deadlineMs)', () => {
  it('starts no failover with less than a second of the deadline left', async () => {
    upstream.script('slow-model', { kind: 'hang' });
    upstream.script('ok-model', answers);
    // The first attempt times out after 600 ms: 1,400 ms of the deadline are left, under 1 s + 600 ms.
    const gw = await gateway({ slow: { timeoutMs: 600 }, ok: {} }, { policy: 'learned', defaultModel: 'slow', fallbackModel: 'ok', deadlineMs: 1500 });
    const before = upstream.received.filter((r) => r.model === 'ok-model').length;
    const err = await apiError(chat(gw, 'auto', false));
    expect(err.status).toBe(504);
    expect(err.message).toContain('no answer within 600 ms');
    expect(upstream.received.filter((r) => r.model === 'ok-model').length).toBe(before);
    const [trace] = await gw.gateway.store.list({});
    expect(trace).toMatchObject({ modelKey: 'slow', outcome: 'timeout' });
  });

  it('within the deadline, a model that times out fails over', async () => {
    upstream.script('slow-model', { kind: 'hang' });
    upstream.script('ok-model', answers);
    const gw = await gateway({ slow: { timeoutMs: 300 }, ok: {} }, { policy: 'learned', defaultModel: 'slow', fallbackModel: 'ok', deadlineMs: 5000 });
    expect(await chat(gw, 'auto', false)).toMatchObject({ model: 'ok', reason: 'failover' });
  });

  it('a 429 whose wait would end past the deadline is not waited out', async () => {
    upstream.script('a-model', openaiLike(() => rateLimited({ 'retry-after': '1' })));
    // A 1 s wait would leave under a second of the 1.8 s deadline.
    const gw = await gateway({ a: {}, b: {} }, { policy: 'learned', defaultModel: 'b', retryAfterMaxMs: 2000, deadlineMs: 1800 });
    const before = upstream.received.filter((r) => r.model === 'a-model').length;
    const err = await apiError(chat(gw, 'a', false));
    expect(err.status).toBe(429);
    expect(upstream.received.filter((r) => r.model === 'a-model').length - before).toBe(1);
  });
});

describe('a routed request fails only when no healthy model could answer', () => {
  for (const policy of ['adaptive', 'contextual', 'learned', 'heuristic']) {
    it(`with three of four models failing, every routed request is answered by the fallback model (${policy})`, async () => {
      for (const k of ['m1', 'm2', 'm3']) upstream.script(`${k}-model`, { kind: 'status', status: 503 });
      upstream.script('ok-model', answers);
      const gw = await gateway({ m1: {}, m2: {}, m3: {}, ok: {} }, { policy, defaultModel: 'm1', fallbackModel: 'ok', maxAttempts: 2 });
      for (let i = 0; i < 12; i++) {
        const res = await chat(gw, 'auto', i % 2 === 1, `question ${i}`);
        expect(res.model).toBe('ok');
        expect(res.text).toContain('ok-model');
      }
    });
  }

  it('the fallback in cooldown is not tried past maxAttempts', async () => {
    for (const k of ['m1', 'm2', 'ok']) upstream.script(`${k}-model`, { kind: 'status', status: 503 });
    const gw = await gateway({ m1: {}, m2: {}, ok: {} }, { policy: 'learned', defaultModel: 'm1', fallbackModel: 'ok', maxAttempts: 1, circuitBreaker: { failures: 1, cooldownSeconds: 60 } });
    await apiError(chat(gw, 'ok', false));
    expect(gw.gateway.health.isAvailable('ok')).toBe(false);
    const before = upstream.received.filter((r) => r.model === 'ok-model').length;
    const err = await apiError(chat(gw, 'auto', false));
    expect(err.status).toBe(503);
    expect(upstream.received.filter((r) => r.model === 'ok-model').length).toBe(before);
  });
});

describe('start-up', () => {
  it('names every model whose apiKeyEnv is unset in one warning line', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const env = 'TRACEGATE_TEST_UNSET_KEY_7f3a';
    delete process.env[env];
    const config = testConfig(upstream, {
      models: {
        a: { baseURL: upstream.baseURL, model: 'a-model', apiKeyEnv: env },
        b: { baseURL: upstream.baseURL, model: 'b-model', apiKeyEnv: env },
        c: { baseURL: upstream.baseURL, model: 'c-model', apiKey: GOOD_KEY },
      },
      router: { policy: 'learned', defaultModel: 'c' },
    });
    const running = await startGateway(config, { logger });
    stops.push(() => running.close());
    const keyless = lines.filter((l) => l.msg.includes(env));
    expect(keyless).toHaveLength(1);
    expect(keyless[0]!.msg).toContain(`a (${env} is unset)`);
    expect(keyless[0]!.msg).toContain(`b (${env} is unset)`);
    expect(keyless[0]!.msg).not.toContain('c (');
  });
});
