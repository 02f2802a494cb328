import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type RunningGateway } from '../../src/app/server.js';
import { startFakeUpstream, type FakeUpstream, type ReceivedRequest } from '../helpers/fake-upstream.js';
import { testConfig } from '../helpers/gateway.js';

// An upstream (a proxy, say) that echoes the credentials it was sent, in headers and bodies.
const ENV_KEY = 'sk-from-env-0123456789abcdef';
const CONFIG_KEY = 'sk-from-config-9876543210fedcba';
const HEADER_SECRET = 'proxy-token-5555aaaa';
const SECRETS = [ENV_KEY, CONFIG_KEY, HEADER_SECRET];

let upstream: FakeUpstream;
let running: RunningGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const config = testConfig(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', apiKeyEnv: 'RELAY_TEST_KEY', timeoutMs: 2000 },
      large: { baseURL: upstream.baseURL, model: 'large-model', apiKey: CONFIG_KEY, headers: { 'x-proxy-token': HEADER_SECRET }, timeoutMs: 2000 },
    },
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large' },
  });
  running = await startGateway(config, { logger: pino({ level: 'silent' }), env: { RELAY_TEST_KEY: ENV_KEY } });
});
afterAll(async () => {
  await running.close();
  await upstream.close();
});
afterEach(() => {
  for (const model of ['small-model', 'large-model']) upstream.script(model, (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});

/** What the upstream was sent as credentials, echoed back as text. */
const echo = (r: ReceivedRequest) => `auth=${r.headers.authorization} proxy=${r.headers['x-proxy-token'] ?? ''}`;

async function chat(model: string, stream = false) {
  const res = await request(`${running.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function expectNoSecret(out: { headers: unknown; text: string }) {
  const all = JSON.stringify(out.headers) + out.text;
  for (const secret of SECRETS) expect(all).not.toContain(secret);
}

describe('what an upstream answers is relayed without its secrets and metadata', () => {
  it('relays only the allowlisted response headers', async () => {
    upstream.script('large-model', (r) => ({
      kind: 'status',
      status: 200,
      body: { id: 'c', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } },
      headers: {
        'x-echo-authorization': String(r.headers.authorization),
        'openai-organization': 'org-the-team',
        'x-internal-host': 'gpu-7.internal',
        via: '1.1 internal-proxy',
        'set-cookie': 'session=abc',
        'x-request-id': 'up-1',
        'openai-processing-ms': '5',
        'openai-version': '2020-10-01',
        'x-ratelimit-remaining-requests': '99',
        'x-ratelimit-reset-tokens': `6ms ${CONFIG_KEY}`,
        'retry-after-ms': '10',
      },
    }));
    const res = await chat('large');
    expect(res.status).toBe(200);
    expectNoSecret(res);
    for (const name of ['x-echo-authorization', 'openai-organization', 'x-internal-host', 'via', 'set-cookie']) expect(res.headers[name]).toBeUndefined();
    expect(res.headers).toMatchObject({
      'x-upstream-request-id': 'up-1',
      'openai-processing-ms': '5',
      'openai-version': '2020-10-01',
      'x-ratelimit-remaining-requests': '99',
      'x-ratelimit-reset-tokens': '6ms [redacted]',
      'retry-after-ms': '10',
    });
  });

  it('redacts an API key (from apiKey or apiKeyEnv) and a configured header value echoed in a whole answer', async () => {
    for (const model of ['small', 'large']) {
      upstream.script(`${model}-model`, (r) => ({ kind: 'answer', content: echo(r) }));
      const res = await chat(model);
      expect(res.status).toBe(200);
      expectNoSecret(res);
      expect(JSON.parse(res.text).choices[0].message.content).toMatch(/^auth=Bearer \[redacted\] proxy=(\[redacted\])?$/);
    }
  });

  it('redacts secrets echoed in an OpenAI-shaped error body, and in error text that is not JSON', async () => {
    upstream.script('large-model', (r) => ({ kind: 'status', status: 400, body: { error: { message: `bad key: ${echo(r)}`, type: 'auth', param: null, code: null } } }));
    const shaped = await chat('large');
    expect(shaped.status).toBe(400);
    expectNoSecret(shaped);
    expect(JSON.parse(shaped.text).error.message).toBe('bad key: auth=Bearer [redacted] proxy=[redacted]');

    upstream.script('large-model', (r) => ({ kind: 'status', status: 502, body: `<html>proxy error ${echo(r)}</html>` }));
    const text = await chat('large');
    expect(text.status).toBe(502);
    expectNoSecret(text);
    expect(JSON.parse(text.text).error.message).toContain('auth=Bearer [redacted]');
  });

  it("a refused key echoed in a 401 reaches neither the client (a 502 of the gateway's) nor the trace", async () => {
    upstream.script('large-model', (r) => ({ kind: 'status', status: 401, body: { error: { message: `bad key: ${echo(r)}`, type: 'auth', param: null, code: null } } }));
    const res = await chat('large');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_auth_failed');
    expectNoSecret(res);
    const trace = await running.gateway.store.get(String(res.headers['x-trace-id']));
    expect(trace?.error).toContain('bad key: auth=Bearer [redacted]');
    for (const secret of SECRETS) expect(trace?.error).not.toContain(secret);
  });

  it('relays the allowlisted headers of an upstream error too (retry-after, rate limits), redacted', async () => {
    upstream.script('large-model', (r) => ({
      kind: 'status',
      status: 429,
      body: { error: { message: 'slow down', type: 'rate_limit', param: null, code: null } },
      headers: { 'retry-after': '3', 'x-ratelimit-limit-requests': '60', 'x-echo': String(r.headers.authorization) },
    }));
    const res = await chat('large');
    expect(res.status).toBe(429);
    expectNoSecret(res);
    expect(res.headers).toMatchObject({ 'retry-after': '3', 'x-ratelimit-limit-requests': '60', 'content-type': 'application/json' });
    expect(res.headers['x-echo']).toBeUndefined();
  });

  it('redacts a secret that a stream echoes split across two reads', async () => {
    upstream.script('large-model', (r) => {
      const event = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: echo(r) } }] })}\n\n`;
      const cut = event.indexOf(CONFIG_KEY) + 9;
      return { kind: 'raw', headers: { 'x-echo': echo(r) }, chunks: [event.slice(0, cut), event.slice(cut), 'data: [DONE]\n\n'], gapMs: 50 };
    });
    const res = await chat('large', true);
    expect(res.status).toBe(200);
    expectNoSecret(res);
    expect(res.text).toContain('auth=Bearer [redacted] proxy=[redacted]');
    expect(res.text.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});
