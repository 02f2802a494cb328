/*
 * POST /v1/responses through the real OpenAI SDK: routed and pinned, whole and streamed; the
 * client's bytes forwarded with `model` alone replaced and the upstream's answer relayed; usage and
 * the response id on the trace; failover before the first byte; a `previous_response_id` kept on
 * the model that holds its state; and routing that chooses, per API, only among the models that
 * serve it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { registerPolicy } from '../../src/routing/registry.js';
import type { Decision, RouterPolicy, RoutingContext } from '../../src/routing/types.js';
import { startFakeUpstream, type FakeUpstream, type ReceivedRequest } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { makeTrace } from '../helpers/trace.js';

/**
 * Spreads requests over the models it is offered, in turn, and remembers what it was offered: so
 * a request that stays on one model stays there for a reason other than the policy.
 */
class SpreadPolicy implements RouterPolicy {
  readonly name = 'responses-test-spread';
  private turn = 0;
  static offered: string[][] = [];
  select(ctx: RoutingContext): Decision {
    SpreadPolicy.offered.push([...ctx.available]);
    return { model: ctx.available[this.turn++ % ctx.available.length]!, reason: 'explore' };
  }
  observe(): void {}
  observeFeedback(): void {}
  async updateFromTraces() {
    return {};
  }
  snapshot() {
    return { policy: this.name, classes: [] };
  }
}
registerPolicy('responses-test-spread', () => new SpreadPolicy());

const SMALL = { in: 0.1, out: 0.2 };
const LARGE = { in: 2.5, out: 10 };

function models(upstream: FakeUpstream) {
  const base = { baseURL: upstream.baseURL, timeoutMs: 2000 };
  return {
    small: { ...base, model: 'small-model', inputCostPerMTok: SMALL.in, outputCostPerMTok: SMALL.out, endpoints: ['chat', 'responses'] },
    large: { ...base, model: 'large-model', inputCostPerMTok: LARGE.in, outputCostPerMTok: LARGE.out, endpoints: ['responses', 'chat'] },
    chatty: { ...base, model: 'chat-model', endpoints: ['chat'] },
    // Left routed, but serves embeddings only: never a candidate for chat or responses.
    emb: { ...base, model: 'embed-model', endpoints: ['embeddings'] },
    verbatim: { ...base, model: 'verbatim-model', endpoints: ['responses'], routed: false },
  };
}

let upstream: FakeUpstream;
let gw: TestGateway;
let client: OpenAI;
/** The request bodies the SDK sent, as bytes, newest last. */
const sent: string[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    models: models(upstream),
    router: { policy: 'responses-test-spread', circuitBreaker: { failures: 1000 } },
  });
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
beforeEach(() => {
  // Every model answers as OpenAI would unless a test scripts it.
  for (const m of ['small-model', 'large-model', 'chat-model', 'embed-model']) upstream.script(m, (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});

/** The requests the upstream received on its Responses endpoint since `from`. */
function responsesRequests(from = 0): ReceivedRequest[] {
  return upstream.received.slice(from).filter((r) => r.path === '/v1/responses');
}

async function traceById(id: string) {
  const found = await gw.gateway.store.get(id);
  if (found === undefined) throw new Error(`no trace ${id}`);
  return found;
}

const price = (p: { in: number; out: number }, input: number, output: number) => (input * p.in + output * p.out) / 1e6;

describe('POST /v1/responses', () => {
  it('routed, whole: the upstream answers on /responses; headers, trace (tokens, cost, response_id) and feedback as for chat', async () => {
    const from = upstream.received.length;
    const { data, response } = await client.responses.create({ model: 'auto', input: 'Say hello in one word.' }).withResponse();
    expect(data.object).toBe('response');
    expect(data.id).toMatch(/^resp_/);
    const model = response.headers.get('x-router-model')!;
    expect(['small', 'large']).toContain(model);
    expect(data.model).toBe(`${model}-model`);
    expect(data.output_text).toBe(`answer from ${model}-model`);
    expect(response.headers.get('x-router-reason')).toBe('explore');
    expect(response.headers.get('x-router-class')).toBeTruthy();
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const got = responsesRequests(from);
    expect(got).toHaveLength(1);
    expect(got[0]!.raw).toBe(sent.at(-1)!.replace('"model":"auto"', `"model":"${model}-model"`));

    const traceId = response.headers.get('x-trace-id')!;
    const trace = await traceById(traceId);
    expect(trace).toMatchObject({
      endpoint: 'responses',
      responseId: data.id,
      modelKey: model,
      routed: true,
      outcome: 'success',
      status: 200,
      query: 'Say hello in one word.',
      promptTokens: data.usage!.input_tokens,
      completionTokens: data.usage!.output_tokens,
      requestBytes: Buffer.byteLength(sent.at(-1)!),
    });
    expect(trace.costUsd).toBeCloseTo(price(model === 'small' ? SMALL : LARGE, data.usage!.input_tokens, data.usage!.output_tokens), 12);

    const feedback = await fetch(`${gw.url}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ trace_id: traceId, feedback: 0.75 }) });
    expect(feedback.status).toBe(200);
    expect((await traceById(traceId)).feedback).toBe(0.75);
  });

  it('routed, streamed: events relayed in order; usage from response.completed and the response id on the trace', async () => {
    const { data: stream, response } = await client.responses.create({ model: 'auto', input: 'Stream please', instructions: 'Be brief.', stream: true }).withResponse();
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const model = response.headers.get('x-router-model')!;
    const deltas = events.filter((e): e is OpenAI.Responses.ResponseTextDeltaEvent => e.type === 'response.output_text.delta').map((e) => e.delta);
    expect(deltas.join('')).toBe(`Hello from ${model}-model`);
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    const usage = completed.response.usage!;
    expect(usage.output_tokens).toBeGreaterThan(0);
    // No stream_options for this API: the client's bytes, model alone replaced.
    const got = responsesRequests().at(-1)!;
    expect(got.body.stream_options).toBeUndefined();
    expect(got.raw).toBe(sent.at(-1)!.replace('"model":"auto"', `"model":"${model}-model"`));

    const trace = await traceById(response.headers.get('x-trace-id')!);
    expect(trace).toMatchObject({
      endpoint: 'responses',
      responseId: completed.response.id,
      outcome: 'success',
      promptTokens: usage.input_tokens,
      completionTokens: usage.output_tokens,
      tokensEstimated: false,
    });
    expect(trace.costUsd).toBeCloseTo(price(model === 'small' ? SMALL : LARGE, usage.input_tokens, usage.output_tokens), 12);
  });

  it("pinned, through the SDK's responses.stream helper", async () => {
    const stream = client.responses.stream({ model: 'large', input: [{ role: 'user', content: [{ type: 'input_text', text: 'pinned stream' }] }] });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('Hello from large-model');
    expect(deltas.join('')).toBe('Hello from large-model');
    const trace = (await gw.gateway.store.recent(1))[0]!;
    expect(trace).toMatchObject({ modelKey: 'large', routed: false, reason: 'pinned', responseId: final.id, query: 'pinned stream' });
  });

  it('a stream that ends in response.failed is relayed whole, and its trace says the response failed', async () => {
    upstream.script('small-model', { kind: 'stream', failed: 'the model broke down' });
    const stream = await client.responses.create({ model: 'small', input: 'fail', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.at(-1)).toBe('response.failed');
    const trace = (await gw.gateway.store.recent(1))[0]!;
    expect(trace).toMatchObject({ modelKey: 'small', outcome: 'error', error: 'response failed: the model broke down' });
    expect(trace.responseId).toMatch(/^resp_/);
  });

  it('ten follow-ups chained by previous_response_id all reach the model holding the state (reason sticky), where the policy spreads others', async () => {
    // Without previous_response_id, the policy spreads requests over both models that serve responses.
    const spread = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { response } = await client.responses.create({ model: 'auto', input: `fresh ${i}` }).withResponse();
      spread.add(response.headers.get('x-router-model')!);
    }
    expect([...spread].sort()).toEqual(['large', 'small']);

    const first = await client.responses.create({ model: 'auto', input: 'Remember the number 7.' }).withResponse();
    const holder = first.response.headers.get('x-router-model')!;
    let previous = first.data.id;
    const from = upstream.received.length;
    for (let i = 0; i < 10; i++) {
      const stream = i % 2 === 1;
      const { data, response } = await client.responses.create({ model: 'auto', input: `follow-up ${i}`, previous_response_id: previous, stream }).withResponse();
      expect(response.headers.get('x-router-model')).toBe(holder);
      expect(response.headers.get('x-router-reason')).toBe('sticky');
      if (stream) {
        let id = '';
        for await (const event of data as AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) if (event.type === 'response.completed') id = event.response.id;
        previous = id;
      } else {
        previous = (data as OpenAI.Responses.Response).id;
      }
      const trace = await traceById(response.headers.get('x-trace-id')!);
      expect(trace).toMatchObject({ modelKey: holder, reason: 'sticky', routed: true, responseId: previous });
    }
    const followUps = responsesRequests(from);
    expect(followUps).toHaveLength(10);
    expect(new Set(followUps.map((r) => r.model))).toEqual(new Set([`${holder}-model`]));
  });

  it('a follow-up sent the moment the stream says response.completed already finds the model holding the state', async () => {
    const stream = await client.responses.create({ model: 'auto', input: 'quick', stream: true }).withResponse();
    const holder = stream.response.headers.get('x-router-model')!;
    let id = '';
    for await (const event of stream.data) {
      if (event.type === 'response.completed') {
        id = event.response.id;
        break;
      }
    }
    const next = await client.responses.create({ model: 'auto', input: 'and then', previous_response_id: id }).withResponse();
    expect(next.response.headers.get('x-router-model')).toBe(holder);
    expect(next.response.headers.get('x-router-reason')).toBe('sticky');
  });

  it('a failure on the model holding the state is answered, naming it: no failover', async () => {
    const first = await client.responses.create({ model: 'auto', input: 'start' }).withResponse();
    const holder = first.response.headers.get('x-router-model')!;
    upstream.script(`${holder}-model`, { kind: 'status', status: 500 });
    const from = upstream.received.length;
    const res = await fetch(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', input: 'next', previous_response_id: first.data.id }),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-router-model')).toBe(holder);
    expect(res.headers.get('x-router-reason')).toBe('sticky');
    expect(responsesRequests(from).map((r) => r.model)).toEqual([`${holder}-model`]);
  });

  it('auto continues a response on the model that made it even when that model is not routed; a model no longer serving responses is a 400', async () => {
    upstream.script('verbatim-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    const made = await client.responses.create({ model: 'verbatim', input: 'state on an unrouted model' });
    const next = await client.responses.create({ model: 'auto', input: 'go on', previous_response_id: made.id }).withResponse();
    expect(next.response.headers.get('x-router-model')).toBe('verbatim');
    expect(next.response.headers.get('x-router-reason')).toBe('sticky');

    // A response whose model has left the config (or no longer serves responses).
    await gw.gateway.store.insert(makeTrace({ modelKey: 'retired', endpoint: 'responses', responseId: 'resp_retired', time: Date.now() }));
    await gw.gateway.store.insert(makeTrace({ modelKey: 'chatty', endpoint: 'responses', responseId: 'resp_chatty', time: Date.now() }));
    for (const [id, model] of [['resp_retired', 'retired'], ['resp_chatty', 'chatty']]) {
      const err = await client.responses.create({ model: 'auto', input: 'x', previous_response_id: id }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, code: 'previous_response_model_unavailable', param: 'previous_response_id' });
      expect((err as Error).message).toContain(`'${model}'`);
    }
  });

  it('an unknown previous_response_id with auto is routed, and the upstream answers for it; a pinned one goes where it is pinned', async () => {
    const unknown = client.responses.create({ model: 'auto', input: 'x', previous_response_id: 'resp_made_elsewhere' });
    await expect(unknown).rejects.toMatchObject({ status: 404, code: 'previous_response_not_found', param: 'previous_response_id' });
    const reasons = (await gw.gateway.store.recent(1)).map((t) => t.reason);
    expect(reasons).toEqual(['explore']);

    const onSmall = await client.responses.create({ model: 'small', input: 'state on small' });
    const from = upstream.received.length;
    // Pinned elsewhere: sent as asked, and that model does not hold the state.
    await expect(client.responses.create({ model: 'large', input: 'x', previous_response_id: onSmall.id })).rejects.toMatchObject({ status: 404 });
    expect(responsesRequests(from).map((r) => r.model)).toEqual(['large-model']);
    // Pinned to the holder: continues.
    const next = await client.responses.create({ model: 'small', input: 'continue', previous_response_id: onSmall.id });
    expect(next.previous_response_id).toBe(onSmall.id);
  });

  it('fails over before the first byte: the first model 500s, the next one answers', async () => {
    upstream.script('small-model', { kind: 'status', status: 500 });
    const reasons: string[] = [];
    for (let i = 0; i < 2; i++) {
      const from = upstream.received.length;
      const stream = i === 1;
      const { response } = await client.responses.create({ model: 'auto', input: `failover ${i}`, stream }).withResponse();
      expect(response.headers.get('x-router-model')).toBe('large');
      reasons.push(response.headers.get('x-router-reason')!);
      const tried = responsesRequests(from).map((r) => r.model);
      if (tried.length === 2) {
        expect(tried).toEqual(['small-model', 'large-model']);
        const [failed, answered] = (await gw.gateway.store.recent(2)).reverse();
        expect(failed).toMatchObject({ modelKey: 'small', outcome: 'error', status: 500, endpoint: 'responses', responseId: null });
        expect(answered).toMatchObject({ modelKey: 'large', reason: 'failover', attempt: 2, outcome: 'success' });
        expect(answered!.responseId).toMatch(/^resp_/);
      }
    }
    // The policy offers small first every other request: one of the two failed over.
    expect(reasons).toContain('failover');
  });

  it('every field passes both ways: the upstream gets the bytes with model replaced, the client gets the answer untouched', async () => {
    const answer = JSON.stringify({
      id: 'resp_verbatim1',
      object: 'response',
      created_at: 1,
      status: 'completed',
      model: 'verbatim-model',
      output: [{ type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'lookup', arguments: '{"q":"x"}', status: 'completed' }],
      reasoning: { effort: 'low', summary: null },
      text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true } },
      store: false,
      something_new: { nested: [1, { deep: 'ü' }] },
      usage: { input_tokens: 40, output_tokens: 9, total_tokens: 49, output_tokens_details: { reasoning_tokens: 3 } },
      metadata: { team: 'a' },
    });
    upstream.script('verbatim-model', { kind: 'raw', headers: { 'content-type': 'application/json' }, chunks: [answer] });
    const body = {
      model: 'verbatim',
      instructions: 'You are terse.',
      input: [
        { role: 'developer', content: 'Answer in JSON.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Look it up' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] },
        { type: 'function_call_output', call_id: 'call_0', output: '{"ok":true}' },
      ],
      tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } }, strict: true }],
      reasoning: { effort: 'low' },
      text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true } },
      store: false,
      metadata: { team: 'a' },
      parallel_tool_calls: false,
      x_unknown_field: { kept: [1, 2, 3] },
    };
    const res = await client.responses.create(body as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming).asResponse();
    expect(await res.text()).toBe(answer);
    const got = upstream.received.at(-1)!;
    expect(got.path).toBe('/v1/responses');
    expect(got.raw).toBe(sent.at(-1)!.replace('"model":"verbatim"', '"model":"verbatim-model"'));
    expect(got.raw).toContain('"x_unknown_field":{"kept":[1,2,3]}');
    const trace = await traceById(res.headers.get('x-trace-id')!);
    // The routing context: the last user item's text, the class from it; usage and id from the answer.
    expect(trace).toMatchObject({ query: 'Look it up', responseId: 'resp_verbatim1', promptTokens: 40, completionTokens: 9, reason: 'pinned' });

    const events = [
      'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_verbatim2","status":"in_progress","usage":null,"extra":"kept"}}\n\n',
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"item_id":"m","output_index":0,"content_index":0,"delta":"hé"}\n\n',
      ': a comment line\n\n',
      'event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"id":"resp_verbatim2","status":"completed","usage":{"input_tokens":12,"output_tokens":2,"total_tokens":14}}}\n\n',
    ];
    upstream.script('verbatim-model', { kind: 'raw', chunks: events });
    const streamed = await client.responses.create({ ...body, stream: true } as unknown as OpenAI.Responses.ResponseCreateParamsStreaming).asResponse();
    expect(await streamed.text()).toBe(events.join(''));
    expect(upstream.received.at(-1)!.raw).toBe(sent.at(-1)!.replace('"model":"verbatim"', '"model":"verbatim-model"'));
    const streamTrace = await traceById(streamed.headers.get('x-trace-id')!);
    expect(streamTrace).toMatchObject({ responseId: 'resp_verbatim2', promptTokens: 12, completionTokens: 2, outcome: 'success' });
  });

  it('bad input and models that do not serve responses: OpenAI-shaped 4xx', async () => {
    const post = async (body: unknown) => {
      const res = await fetch(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { error: { code: string; param: string | null; message: string } } };
    };
    const chatOnly = await post({ model: 'chatty', input: 'hi' });
    expect(chatOnly.status).toBe(400);
    expect(chatOnly.body.error).toMatchObject({ code: 'model_endpoint_not_served', param: 'model' });
    expect(chatOnly.body.error.message).toContain('small, large, verbatim');
    await expect(client.responses.create({ model: 'chatty', input: 'hi' })).rejects.toMatchObject({ status: 400, code: 'model_endpoint_not_served' });
    expect((await post({ model: 'nope', input: 'hi' })).status).toBe(404);
    expect((await post({ model: 'auto', input: 42 })).body.error).toMatchObject({ code: 'invalid_request', param: 'input' });
    expect((await post({ model: 'auto', input: 'x', stream: 'yes' })).body.error.param).toBe('stream');
    expect((await post({ model: 'auto', input: 'x', previous_response_id: 7 })).body.error.param).toBe('previous_response_id');
    expect((await post({ model: 'auto', input: 'x', instructions: ['a'] })).body.error.param).toBe('instructions');
    expect((await post({ input: 'x' })).body.error.param).toBe('model');
    const get = await fetch(`${gw.url}/v1/responses`);
    expect(get.status).toBe(405);
  });
});

describe('routing per API', () => {
  it('auto chat never offers, nor chooses, a routed model that serves embeddings only; responses offers only those that serve responses', async () => {
    SpreadPolicy.offered = [];
    const chosen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { response } = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: `chat ${i}` }] }).withResponse();
      chosen.add(response.headers.get('x-router-model')!);
    }
    expect([...chosen].sort()).toEqual(['chatty', 'large', 'small']);
    for (const offered of SpreadPolicy.offered) expect(offered).toEqual(['small', 'large', 'chatty']);
    SpreadPolicy.offered = [];
    await client.responses.create({ model: 'auto', input: 'r' });
    expect(SpreadPolicy.offered).toEqual([['small', 'large']]);
  });

  it('a chat request pinned to a model that does not serve chat: 400 naming those that do', async () => {
    await expect(client.chat.completions.create({ model: 'emb', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 400,
      code: 'model_endpoint_not_served',
      message: expect.stringContaining('small, large, chatty'),
    });
  });
});
