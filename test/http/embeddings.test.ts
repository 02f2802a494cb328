/*
 * POST /v1/embeddings through the real OpenAI SDK: pinned only, the client's bytes forwarded with
 * `model` alone replaced, the answer relayed, one trace per attempt (class `embedding`) that no
 * policy learns from, and the same access rules as chat completions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { sha256 } from '../../src/access/keys.js';
import { fakeVector, startFakeUpstream, type FakeUpstream, type ReceivedRequest } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

type ErrorBody = { error: { message: string; code: string; param: string | null } };

const EMB_PRICE = 0.02;
const BIG_PRICE = 0.13;

function models(upstream: FakeUpstream) {
  return {
    small: { baseURL: upstream.baseURL, model: 'small-model', inputCostPerMTok: 0.1, outputCostPerMTok: 0.2, timeoutMs: 2000 },
    large: { baseURL: upstream.baseURL, model: 'large-model', inputCostPerMTok: 2.5, outputCostPerMTok: 10, timeoutMs: 2000 },
    emb: { baseURL: upstream.baseURL, model: 'embed-upstream', endpoints: ['embeddings'], routed: false, inputCostPerMTok: EMB_PRICE, timeoutMs: 2000 },
    'emb-big': { baseURL: upstream.baseURL, model: 'embed-big', endpoints: ['embeddings'], routed: false, inputCostPerMTok: BIG_PRICE, timeoutMs: 2000 },
  };
}

let upstream: FakeUpstream;
let gw: TestGateway;
/** The request bodies the SDK sent, as bytes, newest last. */
const sent: string[] = [];
let client: OpenAI;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, { models: models(upstream), router: { defaultModel: 'small' } });
  client = new OpenAI({
    baseURL: `${gw.url}/v1`,
    apiKey: 'k',
    maxRetries: 0,
    fetch: async (url, init) => {
      if (typeof init?.body === 'string') sent.push(init.body);
      return fetch(url, init);
    },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

/** The last request the upstream received on its embeddings endpoint. */
function lastEmbeddingRequest(): ReceivedRequest {
  const r = [...upstream.received].reverse().find((x) => x.path === '/v1/embeddings');
  if (r === undefined) throw new Error('no embeddings request reached the upstream');
  return r;
}

async function traceById(id: string) {
  const found = await gw.gateway.store.get(id);
  if (found === undefined || found === null) throw new Error(`no trace ${id}`);
  return found;
}

describe('POST /v1/embeddings', () => {
  it('a string, with the SDK\'s default base64: the answer decodes to the numbers the upstream sent; the upstream got the client\'s bytes with model replaced', async () => {
    const { data: res, response } = await client.embeddings.create({ model: 'emb', input: 'the quick brown fox' }).withResponse();
    // The SDK asked for base64 and decoded it.
    expect(res.data).toHaveLength(1);
    expect(res.data[0]!.embedding).toEqual(fakeVector(0));
    expect(res.model).toBe('embed-upstream');
    expect(res.usage.prompt_tokens).toBe(Math.ceil('the quick brown fox'.length / 4));
    const got = lastEmbeddingRequest();
    expect(got.body.encoding_format).toBe('base64');
    expect(got.raw).toBe(sent.at(-1)!.replace('"model":"emb"', '"model":"embed-upstream"'));
    expect(response.headers.get('x-router-model')).toBe('emb');
    expect(response.headers.get('x-router-class')).toBe('embedding');
    expect(response.headers.get('x-router-reason')).toBe('pinned');

    const trace = await traceById(response.headers.get('x-trace-id')!);
    expect(trace).toMatchObject({
      endpoint: 'embeddings',
      queryClass: 'embedding',
      routed: false,
      reason: 'pinned',
      modelKey: 'emb',
      upstreamModel: 'embed-upstream',
      outcome: 'success',
      status: 200,
      promptTokens: res.usage.prompt_tokens,
      completionTokens: null,
      tokensEstimated: false,
      requestBytes: Buffer.byteLength(sent.at(-1)!),
      query: 'the quick brown fox',
    });
    expect(trace.costUsd).toBeCloseTo((res.usage.prompt_tokens * EMB_PRICE) / 1e6, 15);
  });

  it('an array of strings as floats, with dimensions, user and a field the gateway does not know: all reach the upstream untouched', async () => {
    const params = { model: 'emb-big', input: ['one', 'two', 'three'], encoding_format: 'float' as const, dimensions: 6, user: 'user-7', vendor_option: { keep: [1, 2] } };
    const res = await client.embeddings.create(params);
    expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(res.data.map((d) => d.embedding)).toEqual([fakeVector(0, 6), fakeVector(1, 6), fakeVector(2, 6)]);
    const got = lastEmbeddingRequest();
    expect(got.body).toEqual({ ...params, model: 'embed-big' });
    expect(got.raw).toBe(sent.at(-1)!.replace('"model":"emb-big"', '"model":"embed-big"'));
  });

  it('token arrays: one, and several', async () => {
    const one = await client.embeddings.create({ model: 'emb', input: [101, 2023, 102], encoding_format: 'float' });
    expect(one.data.map((d) => d.embedding)).toEqual([fakeVector(0)]);
    expect(lastEmbeddingRequest().body.input).toEqual([101, 2023, 102]);
    const several = await client.embeddings.create({ model: 'emb', input: [[1, 2, 3], [4, 5]] });
    expect(several.data.map((d) => d.embedding)).toEqual([fakeVector(0), fakeVector(1)]);
    expect(several.usage.prompt_tokens).toBe(5);
    expect(lastEmbeddingRequest().body.input).toEqual([[1, 2, 3], [4, 5]]);
    const [trace] = await gw.gateway.store.recent(1);
    expect(trace).toMatchObject({ endpoint: 'embeddings', promptTokens: 5, query: '' });
  });

  it('keeps the client\'s bytes: numbers past 2^53, 1.0, escapes, spacing and key order', async () => {
    const body = '{ "input" : "caf\\u00e9",\n  "seed": 9007199254740993, "scale": 1.0, "model" : "emb", "encoding_format":"float" }';
    const res = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(lastEmbeddingRequest().raw).toBe(body.replace('"model" : "emb"', '"model" : "embed-upstream"'));
  });

  it('refuses auto (400, saying why and naming the models that serve embeddings), a chat-only model (400) and an unknown one (404)', async () => {
    const before = upstream.received.length;
    const auto = await client.embeddings.create({ model: 'auto', input: 'x' }).catch((e: unknown) => e);
    expect(auto).toBeInstanceOf(OpenAI.BadRequestError);
    expect((auto as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_not_routable');
    expect((auto as Error).message).toMatch(/not interchangeable/);
    expect((auto as Error).message).toMatch(/emb, emb-big/);

    const chatOnly = await client.embeddings.create({ model: 'small', input: 'x' }).catch((e: unknown) => e);
    expect(chatOnly).toBeInstanceOf(OpenAI.BadRequestError);
    expect((chatOnly as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_endpoint_not_served');
    expect((chatOnly as Error).message).toMatch(/'small' does not serve embeddings .*emb, emb-big/);

    const unknown = await client.embeddings.create({ model: 'nope', input: 'x' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect(upstream.received.length).toBe(before);
  });

  it('refuses a body without input, with a bad input, or not JSON, in OpenAI\'s shape', async () => {
    const post = (body: string) => fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const missing = await post('{"model":"emb"}');
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as ErrorBody).error).toMatchObject({ code: 'invalid_request', param: 'input', message: "Invalid 'input': is required" });
    const bad = await post('{"model":"emb","input":[1.5]}');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error.message).toMatch(/^Invalid 'input': must be a string, an array of strings/);
    const notJson = await post('{"model":');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as ErrorBody).error.code).toBe('invalid_json');
    const get = await fetch(`${gw.url}/v1/embeddings`);
    expect(get.status).toBe(405);
  });

  it('an upstream error passes through; a refused provider key is a 502 upstream_auth_failed', async () => {
    let calls = 0;
    upstream.script('embed-big', () =>
      ++calls === 1
        ? { kind: 'status', status: 400, body: { error: { message: 'input too long for embed-big', type: 'invalid_request_error', param: 'input', code: 'too_long' } } }
        : { kind: 'status', status: 401, body: { error: { message: 'bad key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } },
    );
    const passed = await client.embeddings.create({ model: 'emb-big', input: 'x' }).catch((e: unknown) => e);
    expect(passed).toBeInstanceOf(OpenAI.BadRequestError);
    expect((passed as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('too_long');
    expect((passed as Error).message).toMatch(/input too long for embed-big/);

    const refused = await client.embeddings.create({ model: 'emb-big', input: 'x' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_auth_failed');
    const [trace] = await gw.gateway.store.recent(1);
    expect(trace).toMatchObject({ endpoint: 'embeddings', queryClass: 'embedding', outcome: 'refused', status: 401, modelKey: 'emb-big' });
    upstream.script('embed-big', { kind: 'answer' });
  });

  it('waits out a short 429 once and tries again (two traces: pinned, then retry)', async () => {
    let calls = 0;
    upstream.script('embed-upstream', () => (++calls === 1 ? { kind: 'status', status: 429, headers: { 'retry-after-ms': '20' } } : { kind: 'answer' }));
    try {
      const { data: res, response } = await client.embeddings.create({ model: 'emb', input: 'again', encoding_format: 'float' }).withResponse();
      expect(res.data[0]!.embedding).toEqual(fakeVector(0));
      expect(response.headers.get('x-router-reason')).toBe('retry');
      const [retry, first] = await gw.gateway.store.recent(2);
      expect(first).toMatchObject({ reason: 'pinned', attempt: 1, outcome: 'refused', status: 429, endpoint: 'embeddings' });
      expect(retry).toMatchObject({ reason: 'retry', attempt: 2, outcome: 'success', endpoint: 'embeddings', requestId: first!.requestId });
    } finally {
      upstream.script('embed-upstream', { kind: 'answer' });
    }
  });

  it('counts in /stats, /metrics and the dashboard as the class embedding; no policy learns it, even after a rebuild', async () => {
    await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
    const traces = [];
    for await (const t of gw.gateway.store.exportTraces()) traces.push(t);
    const embeddingTraces = traces.filter((t) => t.queryClass === 'embedding');
    const byModel = (key: string) => embeddingTraces.filter((t) => t.modelKey === key);

    const stats = (await (await fetch(`${gw.url}/stats`)).json()) as {
      classes: Record<string, { decision: string | null; models: Record<string, { count: number; prompt_tokens: number; completion_tokens: number; cost_usd: number }> }>;
    };
    const emb = stats.classes.embedding!;
    expect(emb.decision).toBeNull();
    expect(emb.models.emb!.count).toBe(byModel('emb').length);
    expect(emb.models.emb!.prompt_tokens).toBe(byModel('emb').reduce((s, t) => s + (t.promptTokens ?? 0), 0));
    expect(emb.models.emb!.completion_tokens).toBe(0);
    expect(emb.models.emb!.cost_usd).toBeCloseTo(byModel('emb').reduce((s, t) => s + (t.costUsd ?? 0), 0), 12);
    expect(emb.models['emb-big']!.count).toBe(byModel('emb-big').length);
    // The chat request counts in its own class.
    const chatClasses = Object.keys(stats.classes).filter((c) => c !== 'embedding');
    expect(chatClasses.length).toBeGreaterThan(0);
    for (const c of chatClasses) expect(Object.keys(stats.classes[c]!.models)).not.toContain('emb');

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/tracegate_requests_total\{model="emb",class="embedding",reason="pinned",outcome="success"\} \d+/);

    const dashboard = (await (await fetch(`${gw.url}/dashboard/data?window=3600`)).json()) as { traffic: { classes: Record<string, Record<string, { count: number[] }>> } };
    const traffic = dashboard.traffic.classes.embedding!.emb!.count.reduce((s, n) => s + n, 0);
    expect(traffic).toBe(byModel('emb').length);

    expect(await gw.gateway.policy.updateFromTraces()).toMatchObject({ updated: true });
    const classes = gw.gateway.policy.snapshot().classes.map((c) => c.queryClass);
    expect(classes.length).toBeGreaterThan(0);
    expect(classes).not.toContain('embedding');
  });

  it('keyless: a page of another site is refused, as for chat; the client\'s x-request-id is kept and traced', async () => {
    const foreign = await fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: '{"model":"emb","input":"x"}',
    });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as ErrorBody).error.code).toBe('origin_not_allowed');
    const res = await fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'my-request-42' },
      body: '{"model":"emb","input":"x"}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('my-request-42');
    expect(await traceById(res.headers.get('x-trace-id')!)).toMatchObject({ requestId: 'my-request-42' });
  });

  it('GET /v1/models: every model with the endpoints it serves; auto with those of its routed models', async () => {
    const list = await client.models.list();
    const byId = Object.fromEntries(list.data.map((m) => [m.id, (m as unknown as { endpoints: string[] }).endpoints]));
    expect(byId).toEqual({ auto: ['chat'], small: ['chat'], large: ['chat'], emb: ['embeddings'], 'emb-big': ['embeddings'] });
    const one = (await client.models.retrieve('emb')) as unknown as { id: string; object: string; endpoints: string[] };
    expect(one).toMatchObject({ id: 'emb', object: 'model', endpoints: ['embeddings'] });
  });
});

describe('POST /v1/embeddings with client keys', () => {
  const KEY = 'sk-tenant-embeddings-key';
  let keyed: TestGateway;
  beforeAll(async () => {
    keyed = await startTestGateway(upstream, {
      models: models(upstream),
      server: { host: '127.0.0.1', port: 0, bodyLimitBytes: 4096 },
      auth: { clientKeys: [{ name: 'tenant', sha256: sha256(KEY).toString('hex') }] },
      limits: { maxConcurrentPerKey: 1 },
    });
  });
  afterAll(async () => {
    await keyed.stop();
  });

  it('needs the key (401 without it, and with a wrong one); with it, the trace is the key\'s', async () => {
    const without = await fetch(`${keyed.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"emb","input":"x"}' });
    expect(without.status).toBe(401);
    expect(((await without.json()) as ErrorBody).error.code).toBe('missing_api_key');
    const wrong = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    const refused = await wrong.embeddings.create({ model: 'emb', input: 'x' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);

    const tenant = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const { response } = await tenant.embeddings.create({ model: 'emb', input: 'x' }).withResponse();
    const trace = await keyed.gateway.store.get(response.headers.get('x-trace-id')!);
    expect(trace).toMatchObject({ keyName: 'tenant', endpoint: 'embeddings' });
  });

  it('refuses a body past server.bodyLimitBytes (413) before any upstream sees it', async () => {
    const before = upstream.received.length;
    const res = await fetch(`${keyed.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: 'emb', input: 'x'.repeat(5000) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.code).toBe('body_too_large');
    expect(upstream.received.length).toBe(before);
  });

  it('holds one of the key\'s concurrency slots while it is answered', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    upstream.script('embed-upstream', { kind: 'answer', wait: gate });
    const tenant = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: KEY, maxRetries: 0 });
    try {
      const held = tenant.embeddings.create({ model: 'emb', input: 'held' });
      await expect.poll(() => upstream.received.filter((r) => r.body.input === 'held').length).toBe(1);
      const second = await tenant.embeddings.create({ model: 'emb', input: 'second' }).catch((e: unknown) => e);
      expect(second).toBeInstanceOf(OpenAI.RateLimitError);
      expect((second as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('too_many_concurrent_requests');
      open();
      expect((await held).data).toHaveLength(1);
    } finally {
      open();
      upstream.script('embed-upstream', { kind: 'answer' });
    }
  });
});
