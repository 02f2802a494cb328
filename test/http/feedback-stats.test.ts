import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { grade, judgeModels } from '../helpers/judge.js';

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

async function post(path: string, body: unknown) {
  const res = await request(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, any> };
}

let asked = 0;

/** One answered request; each default prompt differs, so no request resends (regenerates) an earlier one. */
async function answeredTraceId(model = 'auto', content = `tell me something (${++asked})`): Promise<string> {
  const { response } = await gw.client.chat.completions
    .create({ model, messages: [{ role: 'user', content }] })
    .withResponse();
  return response.headers.get('x-trace-id')!;
}

describe('POST /feedback', () => {
  it('stores a score on the trace', async () => {
    const id = await answeredTraceId();
    const res = await post('/feedback', { trace_id: id, feedback: 0.8, comment: 'good enough' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ ok: true, trace_id: id, feedback: 0.8, previous: null });
    const trace = await gw.gateway.store.get(id);
    expect(trace).toMatchObject({ feedback: 0.8, feedbackComment: 'good enough' });
    expect(trace!.feedbackTime).toBeGreaterThan(0);
  });

  it('takes thumbs up and down as 1 and 0, and a change of mind replaces the score', async () => {
    const id = await answeredTraceId();
    expect((await post('/feedback', { trace_id: id, thumbs: 'up' })).json.feedback).toBe(1);
    expect((await gw.gateway.store.get(id))!.feedback).toBe(1);
    const second = await post('/feedback', { trace_id: id, thumbs: 'down' });
    expect(second.json).toMatchObject({ feedback: 0, previous: 1 });
    expect((await gw.gateway.store.get(id))!.feedback).toBe(0);
  });

  it('404s an unknown trace in OpenAI shape', async () => {
    const res = await post('/feedback', { trace_id: '01JZZZZZZZZZZZZZZZZZZZZZZZ', feedback: 1 });
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({ code: 'trace_not_found', param: 'trace_id' });
  });

  for (const [name, body] of [
    ['a score above 1', { feedback: 1.5 }],
    ['a negative score', { feedback: -0.1 }],
    ['a score that is not a number', { feedback: 'great' }],
    ['unknown thumbs', { thumbs: 'sideways' }],
    ['both a score and thumbs', { feedback: 1, thumbs: 'up' }],
    ['neither a score nor thumbs', {}],
  ] as const) {
    it(`400s ${name} and leaves the trace as it was`, async () => {
      const id = await answeredTraceId();
      const res = await post('/feedback', { trace_id: id, ...body });
      expect(res.status).toBe(400);
      expect(res.json.error.type).toBe('invalid_request_error');
      expect((await gw.gateway.store.get(id))!.feedback).toBeNull();
    });
  }

  it('400s a body without trace_id, and a body that is not an object', async () => {
    expect((await post('/feedback', { feedback: 1 })).status).toBe(400);
    expect((await post('/feedback', [1])).status).toBe(400);
  });
});

describe('GET /stats', () => {
  it('reports totals and per class × model figures after traffic', async () => {
    const before = (await (await request(`${gw.url}/stats`)).body.json()) as Record<string, any>;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await answeredTraceId('large', `write a function that sorts list ${i}: \`sort()\``));
    await post('/feedback', { trace_id: ids[0], feedback: 1 });
    await post('/feedback', { trace_id: ids[1], feedback: 0.5 });
    upstream.script('large-model', { kind: 'status', status: 500 });
    await gw.client.chat.completions.create({ model: 'large', messages: [{ role: 'user', content: 'def f(): `x`' }] }).catch(() => undefined);
    upstream.script('large-model', { kind: 'answer' });

    const res = await request(`${gw.url}/stats`);
    expect(res.statusCode).toBe(200);
    const stats = (await res.body.json()) as Record<string, any>;
    expect(stats.total_traces).toBe(before.total_traces + 5);
    const code = stats.classes.code.models.large;
    expect(code.count).toBe(5);
    expect(code.success_rate).toBeCloseTo(4 / 5);
    expect(code.feedback_count).toBe(2);
    expect(code.feedback_by_source).toEqual({ human: 2, judge: 0, implicit: 0, offline: 0 });
    expect(code.mean_feedback).toBeCloseTo(0.75);
    expect(code.latency_p50_ms).toBeGreaterThan(0);
    expect(code.latency_p95_ms).toBeGreaterThanOrEqual(code.latency_p50_ms);
    expect(code.prompt_tokens).toBeGreaterThan(0);
    expect(code.cost_usd).toBeGreaterThan(0);
    expect(stats.classes.code).toHaveProperty('decision');
    expect(stats.policy).toBe('learned');
    // `learned` counts every trace: no quality observations apart.
    expect(code.rated).toBeNull();
    expect(stats.feedback_by_source).toEqual({ ...before.feedback_by_source, human: before.feedback_by_source.human + 2 });
    const sources = stats.feedback_by_source as Record<string, number>;
    expect(Object.values(sources).reduce((a, b) => a + b, 0)).toBe(stats.totals.feedback_count);
  });

  it("counts rated traces by source, and shows the adaptive policy's estimate with its quality observations", async () => {
    upstream.script('judge-stats', (req) => grade(req));
    const judged = await startTestGateway(upstream, {
      models: judgeModels(upstream, 'judge-stats'),
      router: { policy: 'adaptive', seed: 7, judge: { model: 'grader', sampleRate: 1 } },
    });
    try {
      const poll = { timeout: 10_000, interval: 20 };
      const scored = () => judged.gateway.judge!.snapshot().scored;
      const ask = async (content: string) => {
        const { response } = await judged.client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }] }).withResponse();
        return { id: response.headers.get('x-trace-id')!, cls: response.headers.get('x-router-class')!, model: response.headers.get('x-router-model')! };
      };
      // Graded by the judge; then sent again, so the implicit signal replaces the judge's score.
      const first = await ask('name a prime number');
      await expect.poll(scored, poll).toBe(1);
      const second = await ask('name a prime number');
      await expect.poll(scored, poll).toBe(2);
      await expect.poll(async () => (await judged.gateway.store.get(first.id))!.feedbackSource, poll).toBe('implicit');
      // Graded, then rated by a person, whose word replaces the judge's.
      const third = await ask('name an even number');
      await expect.poll(scored, poll).toBe(3);
      const res = await request(`${judged.url}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ trace_id: third.id, feedback: 1 }),
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect((await judged.gateway.store.get(second.id))!.feedbackSource).toBe('judge');

      const stats = (await (await request(`${judged.url}/stats`)).body.json()) as Record<string, any>;
      expect(stats.feedback_by_source).toEqual({ human: 1, judge: 1, implicit: 1, offline: 0 });
      expect(stats.totals.feedback_count).toBe(3);
      const perModel = { human: 0, judge: 0, implicit: 0, offline: 0 };
      const snapshot = judged.gateway.policy.snapshot();
      for (const [cls, c] of Object.entries<any>(stats.classes)) {
        for (const [model, m] of Object.entries<any>(c.models)) {
          for (const k of Object.keys(perModel) as (keyof typeof perModel)[]) perModel[k] += m.feedback_by_source[k];
          expect(m.feedback_by_source.human + m.feedback_by_source.judge + m.feedback_by_source.implicit).toBe(m.feedback_count);
          const arm = snapshot.classes.find((x) => x.queryClass === cls)?.arms.find((a) => a.model === model);
          expect(m.rated, `${cls}/${model}`).toBe(arm?.rated ?? null);
        }
      }
      expect(perModel).toEqual(stats.feedback_by_source);
      // Each answer's arm has its rating among the observations behind its estimate.
      for (const a of [first, second, third]) expect(stats.classes[a.cls].models[a.model].rated).toBeGreaterThanOrEqual(1);
      expect(stats.judge).toMatchObject({ calls: 3, scored: 3 });
    } finally {
      await judged.stop();
    }
  });

  it('filters by time range', async () => {
    const future = Date.now() + 3_600_000;
    const stats = (await (await request(`${gw.url}/stats?since=${future}`)).body.json()) as Record<string, any>;
    expect(stats.total_traces).toBe(0);
  });
});
