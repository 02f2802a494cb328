import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { adminQueries, deepBodies, ODD_TRACE_IDS } from '../helpers/admin-queries.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const KEY = 'tg-fuzz-key';
const ADMIN = 'tg-fuzz-admin';
let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    server: { host: '127.0.0.1', port: 0, bodyLimitBytes: 64 * 1024 },
    auth: { clientKeys: [{ name: 'fuzz', sha256: sha256(KEY).toString('hex') }], adminKey: { sha256: sha256(ADMIN).toString('hex') } },
    // Off: the fuzzer's wrong keys would have its address refused, and its admin calls limited, for most runs.
    limits: { failedAuthPerMinute: 0, adminRequestsPerMinute: 0 },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

const printable = (max: number) => fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~'), maxLength: max });

const paths = fc.constantFrom(
  '/v1/chat/completions', '/v1/models', '/v1/models/auto', '/v1/models/%00', '/v1/models/..%2f..', '/feedback', '/stats',
  '/stats?since=abc&until=-1', '/health', '/metrics', '/dashboard', '/dashboard/data?window=-5&bucket=x', '/dashboard/assets/..%2Fpackage.json',
  '/v1/embeddings', '/', '/v1/chat/completions?x=1', '//v1//chat', '/%E0%A4%A',
);
const anyPath = fc.oneof(paths, adminQueries);

const jsonValue = fc.jsonValue({ maxDepth: 4 });
const messages = fc.oneof(
  fc.array(fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'tool'), fc.string()), content: fc.oneof(fc.string(), jsonValue) }, { requiredKeys: [] }), { maxLength: 4 }),
  jsonValue,
);
const modelName = fc.oneof(fc.constantFrom('auto', 'small', 'large', 'nope', ''), jsonValue);
const chatish = fc.record(
  {
    model: modelName,
    // Keys that upstream decoders matching keys ignoring case (Go's) would read as `model`.
    Model: modelName,
    MODEL: modelName,
    mOdEl: modelName,
    messages,
    stream: fc.oneof(fc.boolean(), jsonValue),
    stream_options: jsonValue,
    tools: jsonValue,
    extra: jsonValue,
  },
  { requiredKeys: [] },
);
const feedbackish = fc.record(
  { trace_id: fc.oneof(fc.string(), jsonValue, fc.constantFrom(...ODD_TRACE_IDS)), feedback: fc.oneof(fc.double(), jsonValue), thumbs: fc.oneof(fc.constantFrom('up', 'down'), fc.string()), comment: jsonValue },
  { requiredKeys: [] },
);
const bodies = fc.oneof(
  chatish.map((b) => JSON.stringify(b)),
  feedbackish.map((b) => JSON.stringify(b)),
  jsonValue.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  deepBodies,
  fc.constant(undefined),
);
const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', '', 'multipart/form-data'),
    authorization: fc.oneof(fc.constant(`Bearer ${KEY}`), fc.constant(`bearer   ${KEY}`), fc.constant(`Bearer ${ADMIN}`), printable(60), fc.constant('Bearer ')),
    'x-request-id': printable(200),
    accept: fc.constantFrom('*/*', 'text/event-stream', 'application/json'),
  },
  { requiredKeys: [] },
);

describe('fuzz: random bodies and headers at every endpoint', () => {
  it('never answers 5xx, never crashes, and never records a trace for a rejected request', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), anyPath, headers, bodies, async (method, path, hdrs, body) => {
        const before = await gw.gateway.store.count();
        const forwarded = upstream.received.length;
        const res = await request(`${gw.url}${path}`, {
          method: method as 'POST',
          headers: hdrs,
          body: method === 'GET' ? undefined : body,
        });
        const text = await res.body.text();
        expect(res.statusCode, `${method} ${path} → ${res.statusCode}: ${text.slice(0, 200)}`).toBeLessThan(500);
        if (res.statusCode >= 400 && res.headers['content-type']?.toString().includes('json')) {
          const parsed = JSON.parse(text);
          expect(Object.keys(parsed.error).sort()).toEqual(['code', 'message', 'param', 'type']);
        }
        // The fake upstream answers every forwarded request with 200, so a 4xx comes from the gateway.
        if (res.statusCode >= 400) expect(await gw.gateway.store.count()).toBe(before);
        // No upstream ever sees a key it could take for `model` but `model` itself.
        for (const seen of upstream.received.slice(forwarded)) {
          expect(Object.keys(seen.body).filter((k) => k !== 'model' && k.toLowerCase() === 'model')).toEqual([]);
        }
      }),
      { numRuns: 400, seed: 20261125 },
    );
    const health = await request(`${gw.url}/health`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  }, 120_000);
});

describe('fuzz: chat bodies with a valid key', () => {
  it('refuses case variants of model and deep nesting (with model twice or not) with a 4xx, never a 5xx, and forwards no case variant', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(chatish.map((b) => JSON.stringify(b)), deepBodies), async (body) => {
        const forwarded = upstream.received.length;
        const res = await request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
          body,
        });
        const text = await res.body.text();
        expect(res.statusCode, `${body.slice(0, 120)} → ${res.statusCode}: ${text.slice(0, 200)}`).toBeLessThan(500);
        for (const seen of upstream.received.slice(forwarded)) {
          expect(Object.keys(seen.body).filter((k) => k !== 'model' && k.toLowerCase() === 'model')).toEqual([]);
        }
      }),
      { numRuns: 200, seed: 20261128 },
    );
  }, 120_000);
});

describe('fuzz: admin query strings with the admin key', () => {
  it('answers 200 or a 400 naming the parameter (431 for a URL past the header limit), never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(adminQueries, async (path) => {
        const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
        const text = await res.body.text();
        expect([200, 400, 431], `${path.slice(0, 120)} → ${res.statusCode}: ${text.slice(0, 200)}`).toContain(res.statusCode);
        if (res.statusCode === 400) expect(['since', 'until', 'window', 'bucket', 'limit']).toContain(JSON.parse(text).error.param);
      }),
      { numRuns: 300, seed: 20261126 },
    );
  }, 120_000);
});
