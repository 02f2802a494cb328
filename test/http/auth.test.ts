import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { request } from 'undici';
import { parseConfig } from '../../src/core/config.js';
import { sha256 } from '../../src/access/keys.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ConfigError } from '../../src/core/errors.js';

const ALICE = 'tg-alice-key-0123456789';
const BOB = 'tg-bob-key-9876543210';
const ADMIN = 'tg-admin-key-abcdef';
const hash = (key: string) => sha256(key).toString('hex');

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    auth: {
      clientKeys: [
        { name: 'alice', sha256: hash(ALICE) },
        { name: 'bob', sha256: hash(BOB), requestsPerMinute: 1000 },
      ],
      adminKey: { sha256: hash(ADMIN) },
    },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

async function call(path: string, key?: string, body?: unknown, method = body === undefined ? 'GET' : 'POST') {
  const res = await request(`${gw.url}${path}`, {
    method: method as 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // HTML or metrics text
  }
  return { status: res.statusCode, headers: res.headers, json, text };
}

const chat = { model: 'auto', messages: [{ role: 'user', content: 'hi' }] };

describe('client keys', () => {
  it('refuses /v1/* and /feedback without a key, or with a wrong one, in OpenAI 401 shape, and records nothing', async () => {
    const before = await gw.gateway.store.count();
    for (const [path, body] of [['/v1/chat/completions', chat], ['/v1/models', undefined], ['/feedback', { trace_id: 'x', feedback: 1 }]] as const) {
      const missing = await call(path, undefined, body);
      expect(missing.status).toBe(401);
      expect(missing.json.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_api_key', param: null });
      const wrong = await call(path, 'tg-not-a-key', body);
      expect(wrong.status).toBe(401);
      expect(wrong.json.error.code).toBe('invalid_api_key');
      expect(wrong.text).not.toContain('tg-not-a-key');
    }
    expect(await gw.gateway.store.count()).toBe(before);
  });

  it('lets a valid key through, and records its name — never the key — on the trace', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: ALICE, maxRetries: 0 });
    const { response } = await client.chat.completions.create(chat as never).withResponse();
    expect(response.status).toBe(200);
    const trace = await gw.gateway.store.get(response.headers.get('x-trace-id')!);
    expect(trace?.keyName).toBe('alice');
    expect(JSON.stringify(trace)).not.toContain(ALICE);
    // The client's key is not sent upstream.
    expect(upstream.received.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('takes feedback only from the key that made the trace (another key gets 404); the admin key may give any', async () => {
    const made = await call('/v1/chat/completions', ALICE, chat);
    const traceId = String(made.headers['x-trace-id']);
    const byBob = await call('/feedback', BOB, { trace_id: traceId, thumbs: 'up' });
    expect(byBob.status).toBe(404);
    expect(byBob.json.error.code).toBe('trace_not_found');
    expect((await gw.gateway.store.get(traceId))!.feedback).toBeNull();
    expect((await call('/feedback', ALICE, { trace_id: traceId, thumbs: 'up' })).status).toBe(200);
    expect((await call('/feedback', ADMIN, { trace_id: traceId, thumbs: 'down' })).status).toBe(200);
    expect((await gw.gateway.store.get(traceId))!.feedback).toBe(0);
  });
});

describe('admin key', () => {
  it('guards /stats, /metrics and the dashboard data; the page itself loads and asks for the key', async () => {
    for (const path of ['/stats', '/metrics', '/dashboard/data']) {
      expect((await call(path)).status, path).toBe(401);
      expect((await call(path, ALICE)).status, path).toBe(401);
      expect((await call(path, ADMIN)).status, path).toBe(200);
    }
    const page = await call('/dashboard');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
  });
});

describe('configuration', () => {
  const models = { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' } };
  it('refuses a non-loopback address without client keys unless allowUnauthenticated is set', () => {
    expect(() => parseConfig({ models, server: { host: '0.0.0.0' } })).toThrow(ConfigError);
    expect(() => parseConfig({ models, server: { host: '0.0.0.0' } })).toThrow(/auth\.allowUnauthenticated/);
    expect(() => parseConfig({ models, server: { host: '0.0.0.0' }, auth: { allowUnauthenticated: true } })).not.toThrow();
    expect(() => parseConfig({ models, server: { host: '0.0.0.0' }, auth: { clientKeys: [{ name: 'a', sha256: hash('k') }] } })).not.toThrow();
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) expect(() => parseConfig({ models, server: { host } })).not.toThrow();
  });

  it('rejects a key entry that is not a SHA-256 digest, and duplicate names', () => {
    expect(() => parseConfig({ models, auth: { clientKeys: [{ name: 'a', sha256: 'plain-key' }] } })).toThrow(/auth\.clientKeys\.0\.sha256/);
    expect(() =>
      parseConfig({ models, auth: { clientKeys: [{ name: 'a', sha256: hash('1') }, { name: 'a', sha256: hash('2') }] } }),
    ).toThrow(/two client keys are named "a"/);
  });
});

describe('admin endpoints with client keys but no admin key', () => {
  let open: TestGateway;
  beforeAll(async () => {
    open = await startTestGateway(upstream, { auth: { clientKeys: [{ name: 'alice', sha256: hash(ALICE) }] } });
  });
  afterAll(() => open.stop());

  it('does not open admin data to anyone when client keys exist but no admin key does (403 admin_key_required)', async () => {
    // A trace with a prompt in it, which /dashboard/data would show.
    const made = await request(`${open.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ALICE}` },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'alice-private-prompt' }] }),
    });
    expect(made.statusCode).toBe(200);
    await made.body.dump();
    for (const path of ['/stats', '/metrics', '/dashboard/data', '/stats?since=0']) {
      for (const key of [undefined, ALICE, 'tg-anything']) {
        const res = await request(`${open.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
        const text = await res.body.text();
        expect(res.statusCode, `${path} with ${key ?? 'no key'}`).toBe(403);
        expect(text).not.toContain('alice-private-prompt');
        const json = JSON.parse(text);
        expect(json.error).toMatchObject({ type: 'invalid_request_error', code: 'admin_key_required', param: null });
        // It says how to add one.
        expect(json.error.message).toContain('tracegate keys add NAME --admin');
      }
    }
    // The page itself loads (and shows that message when its data is refused); the rest still works.
    expect((await request(`${open.url}/dashboard`)).statusCode).toBe(200);
    expect((await request(`${open.url}/health`)).statusCode).toBe(200);
  });
});

describe('wrong keys and the admin key are limited too', () => {
  const started: TestGateway[] = [];
  afterAll(() => Promise.all(started.map((g) => g.stop())));

  async function gatewayWith(limits: Record<string, number>) {
    const g = await startTestGateway(upstream, {
      auth: { clientKeys: [{ name: 'alice', sha256: hash(ALICE) }], adminKey: { sha256: hash(ADMIN) } },
      limits,
    });
    started.push(g);
    return async (path: string, key?: string) => {
      const res = await request(`${g.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as any };
    };
  }

  it('does not let one address guess keys at speed: after failedAuthPerMinute wrong keys it gets 429s, right keys included', async () => {
    const get = await gatewayWith({ failedAuthPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await get('/v1/models', `tg-guess-${i}`)).status).toBe(401);
    const throttled = await get('/v1/models', 'tg-guess-3');
    expect(throttled.status).toBe(429);
    expect(throttled.json.error).toMatchObject({ type: 'requests', code: 'too_many_failed_auth', param: null });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Until it refills, a right key from that address is refused as well: a 200 would confirm a guess.
    expect((await get('/v1/models', ALICE)).status).toBe(429);
    expect((await get('/stats', 'tg-admin-guess')).status).toBe(429);
    expect((await get('/stats', ADMIN)).status).toBe(429);
    // A request without a key guesses nothing: it still gets its 401.
    expect((await get('/v1/models')).status).toBe(401);
  });

  it('does not let the admin key make requests without limit (limits.adminRequestsPerMinute)', async () => {
    const get = await gatewayWith({ adminRequestsPerMinute: 2 });
    expect((await get('/stats', ADMIN)).status).toBe(200);
    expect((await get('/v1/models', ADMIN)).status).toBe(200);
    const over = await get('/metrics', ADMIN);
    expect(over.status).toBe(429);
    expect(over.json.error.code).toBe('rate_limit_exceeded');
    expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Client keys have their own limits.
    expect((await get('/v1/models', ALICE)).status).toBe(200);
  });
});
