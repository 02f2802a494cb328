import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { FeedbackObservation, Observation } from '../../src/routing/types.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import type { TestGateway } from '../helpers/gateway.js';
import { ask, Gate, getJson, grade, gradedText, LONG, metricsText, sample, SHORT, startJudgeGateway, TRUTH } from '../helpers/judge.js';

let upstream: FakeUpstream;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
});
afterAll(async () => {
  await upstream.close();
});

async function start(judgeModel: string, judge: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startJudgeGateway(upstream, judgeModel, { judge });
  gateways.push(gw);
  return gw;
}

function judgeRequests(judgeModel: string) {
  return upstream.received.filter((r) => r.model === judgeModel);
}

const poll = { timeout: 10_000, interval: 20 };

describe('router.judge', () => {
  it('grades every sampled answer after it is out, and the score lands on its trace as judge feedback', async () => {
    const gate = new Gate();
    upstream.script('judge-truth', (req) => grade(req, gate));
    const gw = await start('judge-truth');
    const observed: Observation[] = [];
    const feedback: FeedbackObservation[] = [];
    const policy = gw.gateway.policy;
    const observe = policy.observe.bind(policy);
    const observeFeedback = policy.observeFeedback.bind(policy);
    policy.observe = (o) => (observed.push(o), observe(o));
    policy.observeFeedback = (f) => (feedback.push(f), observeFeedback(f));

    const answers = [];
    for (const content of [SHORT, LONG, SHORT, LONG]) answers.push(await ask(gw, content, 'be brief'));
    // A stream is graded from the text relayed to the client.
    const stream = await gw.client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: SHORT }], stream: true }).withResponse();
    let streamed = '';
    for await (const chunk of stream.data) streamed += chunk.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe('Hello from small-model');
    answers.push({ traceId: stream.response.headers.get('x-trace-id')!, model: 'small', answer: streamed });

    // Every answer is in the client's hands while the judge's replies are all still held: the
    // first two judge calls are in flight, the rest queued, nothing graded.
    expect(new Set(answers.map((a) => a.model))).toEqual(new Set(['small', 'large']));
    await expect.poll(() => judgeRequests('judge-truth').length, poll).toBe(2);
    await expect.poll(() => gw.gateway.judge!.snapshot().queued, poll).toBe(3);
    expect(gw.gateway.judge!.snapshot().calls).toBe(0);
    for (const a of answers) expect((await gw.gateway.store.get(a.traceId))!.feedback).toBeNull();

    gate.open();
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(5);
    for (const a of answers) {
      const trace = (await gw.gateway.store.get(a.traceId))!;
      expect(trace).toMatchObject({ feedback: TRUTH[trace.upstreamModel], feedbackSource: 'judge', feedbackComment: `graded ${trace.upstreamModel}` });
    }
    const sent = judgeRequests('judge-truth');
    expect(sent).toHaveLength(5);
    expect(sent[0]!.body).toMatchObject({ model: 'judge-truth', response_format: { type: 'json_object' } });
    expect(gradedText(sent[0]!)).toContain('be brief');
    expect(gradedText(sent[0]!)).toContain(SHORT);
    expect(sent.some((r) => gradedText(r).includes('Hello from small-model'))).toBe(true);

    // The judge's own calls are traced, as no routing evidence; the policy hears the scores.
    const judgeTraces = (await gw.gateway.store.recent(50)).filter((t) => t.reason === 'judge');
    expect(judgeTraces).toHaveLength(5);
    for (const t of judgeTraces) {
      expect(t).toMatchObject({ queryClass: 'judge', routed: false, modelKey: 'grader', outcome: 'success' });
      expect(t.costUsd).toBeGreaterThan(0);
      expect(t.query).toBe('');
    }
    expect(observed.filter((o) => o.queryClass === 'judge')).toHaveLength(0);
    expect(feedback).toHaveLength(5);
    for (const f of feedback) expect(f).toMatchObject({ source: 'judge', outcome: 'success', previous: null });

    const stats = await getJson(gw, '/stats');
    expect(stats.judge).toMatchObject({ model: 'grader', calls: 5, scored: 5, unparsed: 0, failed: 0 });
    expect(stats.judge.dollars_today).toBeGreaterThan(0);
    const metrics = await metricsText(gw);
    expect(sample(metrics, 'tracegate_judge_calls_total{outcome="scored"}')).toBe(5);
    expect(sample(metrics, 'tracegate_judge_cost_usd_total')).toBeCloseTo(stats.judge.dollars_today, 9);
  });

  it('never sends auto to a routed: false model, which still answers when named', async () => {
    upstream.script('judge-unrouted', (req) => grade(req));
    const gw = await start('judge-unrouted', { sampleRate: 0 });
    // `grader` is the largest model: `heuristic` would send long queries to it if it were routed.
    for (let i = 0; i < 4; i++) expect((await ask(gw, LONG)).model).toBe('large');
    const pinned = await gw.client.chat.completions.create({ model: 'grader', messages: [{ role: 'user', content: LONG }] }).withResponse();
    expect(pinned.response.headers.get('x-router-model')).toBe('grader');
    expect(pinned.data.choices[0]!.message.content).toBe('answer from judge-unrouted');
  });

  it('does not judge pinned requests', async () => {
    upstream.script('judge-pinned', (req) => grade(req));
    const gw = await start('judge-pinned');
    await gw.client.chat.completions.create({ model: 'large', messages: [{ role: 'user', content: SHORT }] });
    await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(1);
    expect(judgeRequests('judge-pinned')).toHaveLength(1);
  });

  it("keeps a person's rating given before the judge's score", async () => {
    const gate = new Gate();
    upstream.script('judge-human', (req) => grade(req, gate));
    const gw = await start('judge-human');
    const { traceId } = await ask(gw, LONG);
    const res = await request(`${gw.url}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ trace_id: traceId, feedback: 0.1, comment: 'wrong' }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    gate.open();
    await expect.poll(() => gw.gateway.judge!.snapshot().refused, poll).toBe(1);
    expect(await gw.gateway.store.get(traceId)).toMatchObject({ feedback: 0.1, feedbackSource: 'human', feedbackComment: 'wrong' });
    expect(gw.gateway.judge!.snapshot()).toMatchObject({ calls: 1, scored: 1 });
  });

  it('counts replies without a score from 0 to 1, error answers and timeouts, and keeps serving', async () => {
    const replies = ['I would rather not say.', '{"score": 7, "reason": "great"}', 'Sure! {"score": "0.5", "reason": "ok"} Hope that helps.', 'score follows: "score": 0.25, "reason": "meh"'];
    upstream.script('judge-bad', (req, n) => {
      if (n <= replies.length) return { kind: 'answer', content: replies[n - 1] };
      if (n <= replies.length + 2) return { kind: 'status', status: 500 };
      if (n <= replies.length + 4) return { kind: 'hang' };
      return grade(req);
    });
    const gw = await start('judge-bad', { timeoutMs: 200 });
    const outcomes = () => {
      const s = gw.gateway.judge!.snapshot();
      return [s.scored, s.unparsed, s.failed];
    };
    const expected = [
      [0, 1, 0],
      [0, 2, 0],
      [1, 2, 0],
      [2, 2, 0],
      [2, 2, 1], // 500, then 500 again on its one retry
      [2, 2, 2], // a timeout, then another
      [3, 2, 2],
    ];
    const ids: string[] = [];
    for (const counts of expected) {
      const a = await ask(gw, SHORT);
      expect(a.answer).toBe('answer from small-model');
      ids.push(a.traceId);
      await expect.poll(outcomes, poll).toEqual(counts);
    }
    expect((await gw.gateway.store.get(ids[2]!))!.feedback).toBe(0.5);
    expect((await gw.gateway.store.get(ids[3]!))!).toMatchObject({ feedback: 0.25, feedbackComment: 'meh' });
    for (const i of [0, 1, 4, 5]) expect((await gw.gateway.store.get(ids[i]!))!.feedback).toBeNull();
    expect(judgeRequests('judge-bad')).toHaveLength(9);
    const judgeTraces = (await gw.gateway.store.recent(100)).filter((t) => t.reason === 'judge');
    expect(judgeTraces.map((t) => t.outcome).sort()).toEqual([...Array(5).fill('success'), 'error', 'error', 'timeout', 'timeout'].sort());
    const metrics = await metricsText(gw);
    expect(sample(metrics, 'tracegate_judge_calls_total{outcome="scored"}')).toBe(3);
    expect(sample(metrics, 'tracegate_judge_calls_total{outcome="unparsed"}')).toBe(2);
    expect(sample(metrics, 'tracegate_judge_calls_total{outcome="failed"}')).toBe(2);
  });

  it('asks again without response_format when the judge model refuses it, and no longer sends it', async () => {
    upstream.script('judge-plain', (req) =>
      req.body.response_format ? { kind: 'status', status: 400, body: { error: { message: 'response_format not supported', type: 'invalid_request_error', param: 'response_format', code: null } } } : grade(req),
    );
    const gw = await start('judge-plain');
    await ask(gw, LONG);
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(1);
    await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(2);
    expect(judgeRequests('judge-plain').map((r) => 'response_format' in r.body)).toEqual([true, false, false]);
  });

  it('drops what is over the per-minute cap', async () => {
    upstream.script('judge-rate', (req) => grade(req));
    const gw = await start('judge-rate', { maxPerMinute: 2 });
    for (let i = 0; i < 5; i++) await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.judge!.snapshot().dropped.rate_limited, poll).toBe(3);
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(2);
    expect(sample(await metricsText(gw), 'tracegate_judge_dropped_total{reason="rate_limited"}')).toBe(3);
  });

  it('drops what does not fit the queue', async () => {
    const gate = new Gate();
    upstream.script('judge-queue', (req) => grade(req, gate));
    const gw = await start('judge-queue', { queueSize: 1 });
    // Two calls in flight (held), one waiting, two dropped.
    for (let i = 0; i < 5; i++) await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.judge!.snapshot().dropped.queue_full, poll).toBe(2);
    expect(gw.gateway.judge!.snapshot()).toMatchObject({ calls: 0, queued: 1, dropped: { rate_limited: 0, budget: 0 } });
    gate.open();
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(3);
    expect(sample(await metricsText(gw), 'tracegate_judge_dropped_total{reason="queue_full"}')).toBe(2);
  });

  it('stops judging once the daily budget is spent, and then no longer tells the policy an answer will be graded', async () => {
    upstream.script('judge-budget', (req) => grade(req));
    const gw = await start('judge-budget', { dailyBudgetUsd: 1e-9 });
    const graded: (boolean | undefined)[] = [];
    const policy = gw.gateway.policy;
    const select = policy.select.bind(policy);
    policy.select = (ctx) => (graded.push(ctx.graded), select(ctx));
    await ask(gw, SHORT);
    await expect.poll(() => gw.gateway.judge!.snapshot().scored, poll).toBe(1);
    for (let i = 0; i < 3; i++) await ask(gw, SHORT);
    // Every request is sampled (sampleRate 1); only the first starts while the judge can grade it.
    expect(graded).toEqual([true, false, false, false]);
    await expect.poll(() => gw.gateway.judge!.snapshot().dropped.budget, poll).toBe(3);
    expect(gw.gateway.judge!.snapshot().calls).toBe(1);
    expect(gw.gateway.judge!.snapshot().dollars_today).toBeGreaterThan(1e-9);
    expect(sample(await metricsText(gw), 'tracegate_judge_dropped_total{reason="budget"}')).toBe(3);
  });

  it('closes with the gateway without waiting for a judge that does not answer', async () => {
    upstream.script('judge-hang', { kind: 'hang' });
    const gw = await start('judge-hang', { timeoutMs: 60_000 });
    await ask(gw, SHORT);
    await expect.poll(() => judgeRequests('judge-hang').length, poll).toBe(1);
    const before = upstream.aborted;
    await gw.stop();
    gateways.splice(gateways.indexOf(gw), 1);
    await expect.poll(() => upstream.aborted, poll).toBe(before + 1);
  });
});
