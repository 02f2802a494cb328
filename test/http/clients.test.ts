import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);
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

async function lastTrace() {
  return (await gw.gateway.store.recent(1))[0]!;
}

describe('the clients people use work unchanged', () => {
  it('Vercel AI SDK, @ai-sdk/openai .chat(): generateText and streamText', async () => {
    const openai = createOpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'k' });
    const { text } = await generateText({ model: openai.chat('auto'), prompt: 'hello from the AI SDK' });
    expect(text).toBe('answer from small-model');
    const result = streamText({ model: openai.chat('auto'), prompt: 'stream please' });
    let streamed = '';
    for await (const part of result.textStream) streamed += part;
    expect(streamed).toBe('Hello from small-model');
    expect((await lastTrace()).outcome).toBe('success');
  });

  it('Vercel AI SDK, @ai-sdk/openai-compatible', async () => {
    const provider = createOpenAICompatible({ name: 'tracegate', baseURL: `${gw.url}/v1`, apiKey: 'k', includeUsage: true });
    const { text, usage } = await generateText({ model: provider('large'), prompt: 'hi' });
    expect(text).toBe('answer from large-model');
    expect(usage.inputTokens).toBeGreaterThan(0);
    const result = streamText({ model: provider('auto'), prompt: 'stream' });
    let streamed = '';
    for await (const part of result.textStream) streamed += part;
    expect(streamed).toBe('Hello from small-model');
    const trace = await lastTrace();
    expect(trace.completionTokens).toBe('Hello from small-model'.length);
  });

  it("LangChain's ChatOpenAI: invoke and stream", async () => {
    const llm = new ChatOpenAI({ model: 'auto', apiKey: 'k', configuration: { baseURL: `${gw.url}/v1` }, maxRetries: 0 });
    const message = await llm.invoke('hello from LangChain');
    expect(message.content).toBe('answer from small-model');
    let streamed = '';
    for await (const chunk of await llm.stream('stream please')) streamed += String(chunk.content);
    expect(streamed).toBe('Hello from small-model');
  });

  it('curl', async () => {
    const { stdout } = await run('curl', [
      '-sS', '-i', `${gw.url}/v1/chat/completions`,
      '-H', 'content-type: application/json',
      '-d', JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi from curl' }] }),
    ]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(stdout).toMatch(/x-router-model: small/i);
    const body = JSON.parse(stdout.slice(stdout.indexOf('\r\n\r\n') + 4));
    expect(body.choices[0].message.content).toBe('answer from small-model');
    const { stdout: streamed } = await run('curl', [
      '-sSN', `${gw.url}/v1/chat/completions`,
      '-H', 'content-type: application/json',
      '-d', JSON.stringify({ model: 'auto', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    ]);
    expect(streamed).toContain('data: [DONE]');
  });
});
