import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, { router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', updateIntervalSeconds: 0.2, circuitBreaker: { failures: 0 } } });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

const ask = (model: string) =>
  gw.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).withResponse();

describe('router.updateIntervalSeconds', () => {
  it('recomputes the learned policy from the store in the background', async () => {
    // The original online rule maps "short" to the first model it sees and never moves after min_samples:
    upstream.script('small-model', { kind: 'status', status: 500 });
    for (let i = 0; i < 6; i++) await ask('small').catch(() => undefined);
    for (let i = 0; i < 6; i++) await ask('large');
    upstream.script('small-model', { kind: 'answer' });
    expect(gw.gateway.policy.name).toBe('learned');
    // Only the batch update, from the traces, sees that large succeeds and small fails.
    await expect
      .poll(async () => (await ask('auto')).response.headers.get('x-router-model'), { timeout: 3000, interval: 100 })
      .toBe('large');
    expect((await ask('auto')).response.headers.get('x-router-reason')).toBe('learned');
  });
});
