import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Observation } from '../../src/routing/types.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import type { TestGateway } from '../helpers/gateway.js';
import { ask, Gate, getJson, grade, LONG, metricsText, sample, SHORT, startJudgeGateway, TRUTH } from '../helpers/judge.js';

let upstream: FakeUpstream;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
  upstream.script('large-model', (req) => (req.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
});
afterAll(async () => {
  await upstream.close();
});

async function start(judgeModel: string, judge: Record<string, unknown>, shadow: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startJudgeGateway(upstream, judgeModel, { judge, shadow });
  gateways.push(gw);
  return gw;
}

const poll = { timeout: 10_000, interval: 20 };

describe('router.shadow', () => {
  it('sends each sampled routed request to another model after the answer is out, traces it, and the judge grades both', async () => {
    upstream.script('judge-shadow', (req) => grade(req));
    const gw = await start('judge-shadow', { sampleRate: 1 }, { rate: 1 });
    const observed: Observation[] = [];
    const policy = gw.gateway.policy;
    const observe = policy.observe.bind(policy);
    policy.observe = (o) => (observed.push(o), observe(o));
    // The shadow model's answers are held: the client's answer does not wait for them.
    const gate = new Gate();
    upstream.script('large-model', (req) => (req.body.stream === false ? { kind: 'answer', wait: gate.promise } : { kind: 'answer' }));
    const before = upstream.received.length;

    const whole = await ask(gw, SHORT, 'be brief');
    expect(whole).toMatchObject({ model: 'small', answer: 'answer from small-model' });
    const stream = await gw.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: SHORT }], stream: true, stream_options: { include_usage: true } })
      .withResponse();
    let streamed = '';
    for await (const chunk of stream.data) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('Hello from small-model');
    expect(stream.response.headers.get('x-router-model')).toBe('small');
    expect(stream.response.headers.get('x-router-reason')).not.toBe('shadow');

    const shadowRequests = () => upstream.received.slice(before).filter((r) => r.model === 'large-model');
    await expect.poll(() => shadowRequests().length, poll).toBe(2);
    for (const r of shadowRequests()) {
      expect(r.body.stream).toBe(false);
      expect(r.body).not.toHaveProperty('stream_options');
    }
    expect(shadowRequests()[0]!.body.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: SHORT }]);
    gate.open();

    // Two served answers and two shadow answers graded.
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(4);
    const traces = await gw.gateway.store.recent(50);
    const shadows = traces.filter((t) => t.reason === 'shadow');
    expect(shadows).toHaveLength(2);
    for (const t of shadows) {
      expect(t).toMatchObject({ modelKey: 'large', routed: true, queryClass: 'short', outcome: 'success', feedback: TRUTH['large-model'], feedbackSource: 'judge' });
      expect(observed.some((o) => o.traceId === t.id && o.model === 'large' && o.queryClass === 'short')).toBe(true);
    }
    for (const id of [whole.traceId, stream.response.headers.get('x-trace-id')!]) {
      expect(await gw.gateway.store.get(id)).toMatchObject({ modelKey: 'small', feedback: TRUTH['small-model'], feedbackSource: 'judge' });
    }
    expect(traces.filter((t) => t.reason === 'judge')).toHaveLength(4);

    await expect.poll(async () => (await getJson(gw, '/stats')).shadow?.answered, poll).toBe(2);
    const stats = await getJson(gw, '/stats');
    expect(stats.shadow).toMatchObject({ calls: 2, answered: 2, failed: 0 });
    expect(stats.shadow.dollars_today).toBeGreaterThan(0);
    const metrics = await metricsText(gw);
    expect(sample(metrics, 'tracegate_shadow_calls_total{outcome="success"}')).toBe(2);
    expect(sample(metrics, 'tracegate_shadow_cost_usd_total')).toBeCloseTo(stats.shadow.dollars_today, 9);
    expect(sample(metrics, 'tracegate_requests_total{model="large",class="short",reason="shadow",outcome="success"}')).toBe(2);
  });

  it("judges the served answer through the shadow when the judge's own sampling skipped it", async () => {
    upstream.script('judge-pair', (req) => grade(req));
    const gw = await start('judge-pair', { sampleRate: 0 }, { rate: 1 });
    const served = await ask(gw, LONG);
    expect(served.model).toBe('large');
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(2);
    expect(await gw.gateway.store.get(served.traceId)).toMatchObject({ feedback: TRUTH['large-model'], feedbackSource: 'judge' });
    const shadow = (await gw.gateway.store.recent(20)).find((t) => t.reason === 'shadow')!;
    expect(shadow).toMatchObject({ modelKey: 'small', queryClass: 'long', feedback: TRUTH['small-model'] });
  });

  it('stops once its daily budget is spent', async () => {
    upstream.script('judge-shadow-budget', (req) => grade(req));
    const gw = await start('judge-shadow-budget', { sampleRate: 0 }, { rate: 1, dailyBudgetUsd: 1e-9 });
    await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.shadow!.snapshot().answered, poll).toBe(1);
    for (let i = 0; i < 3; i++) await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.shadow!.snapshot().skipped.budget, poll).toBe(3);
    expect(gw.gateway.shadow!.snapshot().calls).toBe(1);
    expect((await gw.gateway.store.recent(50)).filter((t) => t.reason === 'shadow')).toHaveLength(1);
    expect(sample(await metricsText(gw), 'tracegate_shadow_skipped_total{reason="budget"}')).toBe(3);
  });

  it('traces a shadow call the model refused (a 429) as refused: no quality evidence, no cooldown from one', async () => {
    upstream.script('judge-shadow-refused', (req) => grade(req));
    upstream.script('large-model', () => ({ kind: 'status', status: 429, body: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } } }));
    const gw = await start('judge-shadow-refused', { sampleRate: 0 }, { rate: 1 });
    await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.shadow!.snapshot().failed, poll).toBe(1);
    const [shadow] = (await gw.gateway.store.recent(50)).filter((t) => t.reason === 'shadow');
    expect(shadow).toMatchObject({ modelKey: 'large', outcome: 'refused', status: 429 });
    expect(shadow!.error).toContain('rate limited');
    const quality = await gw.gateway.store.qualityEvidence({});
    expect(quality.filter((q) => q.model === 'large')).toEqual([]);
  });
});
