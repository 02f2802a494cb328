import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream);
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

describe('POST /v1/chat/completions', () => {
  it('routes model "auto" through the policy and says why in the headers', async () => {
    const { data, response } = await gw.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'hello there' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('answer from small-model');
    expect(response.headers.get('x-router-model')).toBe('small');
    expect(response.headers.get('x-router-reason')).toBe('default');
    expect(response.headers.get('x-router-class')).toBe('short');
    expect(response.headers.get('x-trace-id')).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const trace = await gw.gateway.store.get(response.headers.get('x-trace-id')!);
    expect(trace).toMatchObject({ modelKey: 'small', upstreamModel: 'small-model', routed: true, reason: 'default', outcome: 'success', status: 200, attempt: 1, queryClass: 'short' });
    expect(trace!.promptTokens).toBeGreaterThan(0);
    expect(trace!.costUsd).toBeGreaterThan(0);
  });

  it('sends a configured key straight to that model (pinned) and still traces it', async () => {
    const { data, response } = await gw.client.chat.completions
      .create({ model: 'large', messages: [{ role: 'user', content: 'hello' }] })
      .withResponse();
    expect(data.model).toBe('large-model');
    expect(response.headers.get('x-router-model')).toBe('large');
    expect(response.headers.get('x-router-reason')).toBe('pinned');
    const trace = await gw.gateway.store.get(response.headers.get('x-trace-id')!);
    expect(trace).toMatchObject({ modelKey: 'large', routed: false, reason: 'pinned' });
  });

  it('answers an unknown model with 404 model_not_found naming "auto" and the configured keys, and records nothing', async () => {
    const before = await gw.gateway.store.count();
    const err = await gw.client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .then(() => undefined, (e: unknown) => e as { status: number; code: string; param: string; message: string });
    expect(err).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    // The example config's user sends the upstream's name (gpt-4o); the answer names what to send instead.
    expect(err?.message).toContain(`The model 'gpt-4o' does not exist or you do not have access to it. Use "auto" or one of: small, large`);
    expect(await gw.gateway.store.count()).toBe(before);
  });

  it('passes every request field through untouched except model', async () => {
    const body = {
      model: 'auto',
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is in this image?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
      tool_choice: 'auto',
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
      temperature: 0.3,
      seed: 7,
      metadata: { team: 'search' },
      some_future_field: { nested: [1, 2, { deep: true }] },
    };
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.statusCode).toBe(200);
    await res.body.json();
    const seen = upstream.received.at(-1)!;
    expect(seen.body).toEqual({ ...body, model: 'small-model' });
    expect(seen.path).toBe('/v1/chat/completions');
  });

  it("sends the client's own bytes with only model's value replaced: big integers, 1.0 and escapes kept", async () => {
    const text =
      '{\n  "seed": 9007199254740993,\n  "model" : "auto",\n  "temperature": 1.0,\n' +
      '  "messages": [{"role": "user", "content": "caf\\u00e9 \\"model\\": \\"x\\""}],\n  "logit_bias": {"50256": -100, "1": 2}\n}\n';
    const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect(res.statusCode).toBe(200);
    await res.body.json();
    expect(upstream.received.at(-1)!.raw).toBe(text.replace('"auto"', '"small-model"'));
  });

  it('serializes the request again when model is there twice (the last one counts, as for JSON.parse)', async () => {
    const text = '{"model":"large","messages":[{"role":"user","content":"hi"}],"model":"auto","seed":1.0}';
    const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-router-reason']).not.toBe('pinned');
    await res.body.json();
    expect(upstream.received.at(-1)!.raw).toBe('{"model":"small-model","messages":[{"role":"user","content":"hi"}],"seed":1}');
  });

  it('passes every response field through untouched', async () => {
    upstream.script('small-model', {
      kind: 'answer',
      content: 'x',
      extra: { service_tier: 'default', vendor_extension: { a: [1, 2] } },
    });
    try {
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
      });
      const json = (await res.body.json()) as Record<string, unknown>;
      expect(json.service_tier).toBe('default');
      expect(json.vendor_extension).toEqual({ a: [1, 2] });
      expect(json.system_fingerprint).toBe('fp_fake');
      expect(res.headers['openai-processing-ms']).toBe('1');
      expect(res.headers['x-upstream-request-id']).toBe('upstream-req-1');
    } finally {
      upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    }
  });

  it('relays a stream chunk by chunk and records the usage chunk', async () => {
    upstream.script('small-model', { kind: 'stream', parts: ['one', ' two', ' three'], delayMs: 150 });
    try {
      const { data: stream, response } = await gw.client.chat.completions
        .create({
          model: 'auto',
          stream: true,
          stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'count to three' }],
        })
        .withResponse();
      const arrivals: number[] = [];
      let text = '';
      let usage: { completion_tokens: number } | undefined;
      for await (const chunk of stream) {
        arrivals.push(Date.now());
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toBe('one two three');
      expect(usage?.completion_tokens).toBe('one two three'.length);
      // Chunks arrive spread over time, not in one buffered burst at the end.
      expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(250);
      const trace = await gw.gateway.store.get(response.headers.get('x-trace-id')!);
      expect(trace).toMatchObject({ outcome: 'success', promptTokens: 11, completionTokens: 'one two three'.length });
      expect(trace!.ttfbMs).not.toBeNull();
    } finally {
      upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    }
  });

  it('relays a stream larger than the sockets hold to a client that reads slowly, whole and in order', async () => {
    // 4,000 chunks of 1 KB: far more than the socket buffers, so the relay must pause the upstream
    // body until the client drains, and resume it.
    const parts = Array.from({ length: 4000 }, (_, i) => `${String(i).padStart(6, '0')}${'x'.repeat(1018)}`);
    upstream.script('small-model', { kind: 'stream', parts });
    try {
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'a long story' }] }),
        highWaterMark: 1024,
      });
      expect(res.statusCode).toBe(200);
      let raw = '';
      let reads = 0;
      for await (const chunk of res.body) {
        raw += (chunk as Buffer).toString('utf8');
        // The slow client: a pause now and then (what it simulates, not a wait for something).
        if (++reads % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      const events = raw.split('\n\n').filter((e) => e.startsWith('data: '));
      expect(events.at(-1)).toBe('data: [DONE]');
      const text = events
        .slice(0, -1)
        .map((e) => JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] })
        .map((c) => c.choices[0]?.delta.content ?? '')
        .join('');
      expect(text).toBe(parts.join(''));
      const trace = await gw.gateway.store.get(res.headers['x-trace-id'] as string);
      expect(trace).toMatchObject({ outcome: 'success', completionTokens: text.length });
    } finally {
      upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    }
  });

  it('relays whole, with its usage traced, a stream request the upstream answers with plain JSON', async () => {
    upstream.script('large-model', { kind: 'answer' });
    try {
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'large', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
      });
      const body = (await res.body.json()) as { object: string; usage: { prompt_tokens: number } };
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('application/json');
      expect(body.object).toBe('chat.completion');
      const trace = await gw.gateway.store.get(res.headers['x-trace-id'] as string);
      expect(trace).toMatchObject({ outcome: 'success', promptTokens: body.usage.prompt_tokens });
    } finally {
      upstream.script('large-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    }
  });

  it('keeps the answer when the client sends x-request-id, and echoes it', async () => {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-abc-123' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.json();
    expect(res.headers['x-request-id']).toBe('req-abc-123');
    const trace = await gw.gateway.store.get(String(res.headers['x-trace-id']));
    expect(trace?.requestId).toBe('req-abc-123');
  });
});

describe('GET /v1/models', () => {
  it('lists the auto model and every configured key in OpenAI shape', async () => {
    const page = await gw.client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['auto', 'small', 'large']);
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'tracegate' });
  });

  it('retrieves one model, and 404s an unknown one', async () => {
    expect((await gw.client.models.retrieve('large')).id).toBe('large');
    const err = await gw.client.models.retrieve('nope').catch((e: unknown) => e as { status: number; code: string });
    expect(err).toMatchObject({ status: 404, code: 'model_not_found' });
  });
});

describe('GET /health', () => {
  it('is 200 while the database is usable', async () => {
    const res = await request(`${gw.url}/health`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ status: 'ok' });
  });
});
