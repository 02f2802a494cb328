import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(() => upstream.close());

const PROMPT = `My account number is 12345678 and ${'please summarise this long text. '.repeat(20)}`;

async function storedQuery(storePrompts?: string, truncateChars?: number) {
  const gw = await startTestGateway(upstream, storePrompts ? { traces: { storePrompts, ...(truncateChars ? { truncateChars } : {}) } } : {});
  try {
    const { response } = await gw.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: PROMPT }] })
      .withResponse();
    return (await gw.gateway.store.get(response.headers.get('x-trace-id')!))!;
  } finally {
    await gw.stop();
  }
}

describe('traces.storePrompts', () => {
  it('truncated (the default) keeps the first 200 characters', async () => {
    const trace = await storedQuery();
    expect(trace.query).toBe(PROMPT.slice(0, 200));
    expect(trace.queryLength).toBe(PROMPT.length);
  });

  it('truncated honours truncateChars', async () => {
    expect((await storedQuery('truncated', 10)).query).toBe(PROMPT.slice(0, 10));
  });

  it('full keeps the whole last user message', async () => {
    expect((await storedQuery('full')).query).toBe(PROMPT);
  });

  it('none keeps only the class and the length', async () => {
    const trace = await storedQuery('none');
    expect(trace.query).toBeNull();
    expect(trace.queryLength).toBe(PROMPT.length);
    expect(trace.queryClass).toBe('long');
  });
});
