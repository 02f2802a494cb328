import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedUpstream } from '../../src/demo/simulated-upstream.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Streams are counted whether or not the client asks for usage: the gateway asks the upstream (which,
 * like OpenAI's, sends usage only when asked) and takes the usage event out of a stream whose client
 * did not ask. Driven with the `openai` SDK.
 */
let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', inputCostPerMTok: 0.1, outputCostPerMTok: 0.2, timeoutMs: 2000 },
      large: { baseURL: upstream.baseURL, model: 'large-model', inputCostPerMTok: 2.5, outputCostPerMTok: 10, timeoutMs: 2000 },
      plain: { baseURL: upstream.baseURL, model: 'plain-model', inputCostPerMTok: 1, outputCostPerMTok: 1, timeoutMs: 2000, streamUsage: false },
    },
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large' },
  });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

async function traceOf(id: string) {
  const trace = (await gw.gateway.store.recent(20)).find((t) => t.id === id);
  if (!trace) throw new Error(`no trace ${id}`);
  return trace;
}

async function streamed(body: Record<string, unknown>) {
  const { data, response } = await gw.client.chat.completions
    .create({ model: 'small', messages: [{ role: 'user', content: 'count me' }], stream: true, ...body } as never)
    .withResponse();
  const chunks: { choices: unknown[]; usage?: unknown }[] = [];
  for await (const chunk of data as unknown as AsyncIterable<{ choices: unknown[]; usage?: unknown }>) chunks.push(chunk);
  return { chunks, traceId: response.headers.get('x-trace-id')!, sent: upstream.received.at(-1)! };
}

const text = (chunks: { choices: unknown[] }[]) =>
  chunks.map((c) => ((c.choices[0] as { delta?: { content?: string } } | undefined)?.delta?.content ?? '')).join('');

describe('streamed answers are counted', () => {
  it('a stream without include_usage: the upstream is asked, the trace has tokens and cost, the client sees no usage chunk', async () => {
    const { chunks, traceId, sent } = await streamed({});
    expect(sent.body.stream_options).toEqual({ include_usage: true });
    // The client's bytes, with only model and the option spliced in.
    expect(sent.raw).toBe('{"stream_options":{"include_usage":true},"model":"small-model","messages":[{"role":"user","content":"count me"}],"stream":true}');
    expect(text(chunks)).toBe('Hello from small-model');
    expect(chunks.every((c) => c.choices.length > 0 && c.usage === undefined)).toBe(true);
    const trace = await traceOf(traceId);
    expect(trace.promptTokens).toBe(11);
    expect(trace.completionTokens).toBe('Hello from small-model'.length);
    expect(trace.costUsd).toBeGreaterThan(0);
    expect(trace.tokensEstimated).toBe(false);
  });

  it('a client that asks for usage gets the usage chunk as before', async () => {
    const { chunks, traceId, sent } = await streamed({ stream_options: { include_usage: true } });
    expect(sent.body.stream_options).toEqual({ include_usage: true });
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 'Hello from small-model'.length });
    expect((await traceOf(traceId)).completionTokens).toBe('Hello from small-model'.length);
  });

  it("include_usage is merged into the client's own stream_options (and its false is replaced)", async () => {
    const merged = await streamed({ stream_options: { other: 1 } });
    expect(merged.sent.body.stream_options).toEqual({ include_usage: true, other: 1 });
    expect(merged.chunks.every((c) => c.choices.length > 0)).toBe(true);
    const replaced = await streamed({ stream_options: { include_usage: false } });
    expect(replaced.sent.body.stream_options).toEqual({ include_usage: true });
    expect(replaced.chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect((await traceOf(replaced.traceId)).completionTokens).toBe('Hello from small-model'.length);
  });

  it('routed streams are counted too', async () => {
    const { chunks, traceId } = await streamed({ model: 'auto' });
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect((await traceOf(traceId)).completionTokens).toBeGreaterThan(0);
  });

  it('streamUsage: false sends no stream_options, relays the stream as it is, and estimates the tokens from the text', async () => {
    const { chunks, sent, traceId } = await streamed({ model: 'plain' });
    expect(sent.body.stream_options).toBeUndefined();
    expect(sent.raw).toBe('{"model":"plain-model","messages":[{"role":"user","content":"count me"}],"stream":true}');
    expect(text(chunks)).toBe('Hello from plain-model');
    const trace = await traceOf(traceId);
    // Characters / 4, rounded up: "count me" (8) and "Hello from plain-model" (22).
    expect(trace.promptTokens).toBe(2);
    expect(trace.completionTokens).toBe(6);
    expect(trace.costUsd).toBeCloseTo(8e-6, 12);
    expect(trace.tokensEstimated).toBe(true);
  });

  it('streamUsage: false with a client that asks for usage: the upstream counts, nothing is estimated', async () => {
    const { chunks, traceId } = await streamed({ model: 'plain', stream_options: { include_usage: true } });
    expect(chunks.at(-1)!.usage).toBeDefined();
    const trace = await traceOf(traceId);
    expect(trace.completionTokens).toBe('Hello from plain-model'.length);
    expect(trace.tokensEstimated).toBe(false);
  });

  it('a request without a stream is sent without stream_options', async () => {
    await gw.client.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'whole' }] });
    expect(upstream.received.at(-1)!.body.stream_options).toBeUndefined();
  });
});

describe("the demo's simulated models", () => {
  it('send a usage chunk only when asked; through the gateway every chunk has a choice and the trace has tokens', async () => {
    const sim = await startSimulatedUpstream({ 'sim-model': { failureRate: 0, latencyMs: 1 } }, { seed: 1 });
    const demo = await startTestGateway(upstream, {
      models: { sim: { baseURL: sim.baseURL, model: 'sim-model', inputCostPerMTok: 1, outputCostPerMTok: 1, timeoutMs: 2000 } },
      router: { policy: 'learned', defaultModel: 'sim', fallbackModel: 'sim' },
    });
    try {
      const direct = async (body: Record<string, unknown>) => {
        const res = await fetch(`${sim.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'sim-model', messages: [{ role: 'user', content: 'hi' }], stream: true, ...body }),
        });
        return (await res.text()).split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)) as { choices: unknown[]; usage?: unknown });
      };
      expect((await direct({})).every((c) => c.choices.length > 0 && c.usage === undefined)).toBe(true);
      expect((await direct({ stream_options: { include_usage: true } })).at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 1 } });

      const { data, response } = await demo.client.chat.completions
        .create({ model: 'auto', messages: [{ role: 'user', content: 'hello there' }], stream: true })
        .withResponse();
      let answer = '';
      // The Python SDK's usual loop: every chunk's first choice.
      for await (const chunk of data) answer += chunk.choices[0]!.delta.content ?? '';
      expect(answer).toContain('(sim-model)');
      const trace = (await demo.gateway.store.recent(5)).find((t) => t.id === response.headers.get('x-trace-id'))!;
      expect(trace.completionTokens).toBe(Math.ceil(answer.length / 4));
      expect(trace.tokensEstimated).toBe(false);
    } finally {
      await demo.stop();
      await sim.close();
    }
  });
});
