import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import OpenAI from 'openai';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import type { FeedbackObservation } from '../../src/routing/types.js';
import { RegenerationDetector } from '../../src/signals/regeneration.js';
import type { FeedbackResult, FeedbackUpdate } from '../../src/traces/types.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { metricsText } from '../helpers/judge.js';

/**
 * The regenerate signal over HTTP, with the openai SDK as the client: the same caller sending the
 * same conversation again within `router.implicit.windowSeconds` marks the earlier answer's trace
 * with feedback 0 from source `implicit`, and the policy learns from it.
 */

const ALICE = 'tg-alice-key-implicit-0123';
const BOB = 'tg-bob-key-implicit-4567';
const ADMIN = 'tg-admin-key-implicit-89ab';
const hash = (key: string) => sha256(key).toString('hex');
const poll = { timeout: 5000, interval: 10 };

let upstream: FakeUpstream;

/** A gateway with what it marked (every implicit `setFeedback` and what it returned) and the feedback its policy heard. */
interface Watched {
  gw: TestGateway;
  alice: OpenAI;
  bob: OpenAI;
  marks: { id: string; update: FeedbackUpdate; done: Promise<FeedbackResult | undefined> }[];
  heard: FeedbackObservation[];
}

async function start(router: Record<string, unknown>): Promise<Watched> {
  const gw = await startTestGateway(upstream, {
    auth: { clientKeys: [{ name: 'alice', sha256: hash(ALICE) }, { name: 'bob', sha256: hash(BOB) }], adminKey: { sha256: hash(ADMIN) } },
    router: { policy: 'adaptive', seed: 3, ...router },
  });
  const client = (apiKey: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, maxRetries: 0 });
  const watched: Watched = { gw, alice: client(ALICE), bob: client(BOB), marks: [], heard: [] };
  // The mark starts as the resend arrives (setFeedback is called before the resend is answered), so
  // once a resend has its answer, `marks` holds every mark it made.
  const store = gw.gateway.store;
  const setFeedback = store.setFeedback.bind(store);
  store.setFeedback = (id, update, owner) => {
    const done = setFeedback(id, update, owner);
    if (update.source === 'implicit') watched.marks.push({ id, update, done });
    return done;
  };
  const policy = gw.gateway.policy;
  const observeFeedback = policy.observeFeedback.bind(policy);
  policy.observeFeedback = (f) => {
    watched.heard.push(f);
    observeFeedback(f);
  };
  return watched;
}

let main: Watched;
let brief: Watched;
let off: Watched;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  // `main` has the default `router.implicit` (a 120 s window).
  main = await start({});
  brief = await start({ implicit: { windowSeconds: 0.2 } });
  off = await start({ implicit: false });
});
afterAll(async () => {
  await Promise.all([main, brief, off].map((w) => w?.gw.stop()));
  await upstream.close();
});

type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** One answered request: its trace id, model key and query class. */
async function chat(client: OpenAI, messages: Message[], stream = false) {
  if (stream) {
    const { data, response } = await client.chat.completions.create({ model: 'auto', messages, stream: true }).withResponse();
    let text = '';
    for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toMatch(/^Hello from /);
    return answered(response.headers);
  }
  const { response } = await client.chat.completions.create({ model: 'auto', messages }).withResponse();
  return answered(response.headers);
}

function answered(headers: Headers) {
  return { traceId: headers.get('x-trace-id')!, model: headers.get('x-router-model')!, queryClass: headers.get('x-router-class')! };
}

const user = (content: string): Message[] => [{ role: 'user', content }];

/** The adaptive policy's quality observations behind a class × model estimate. */
function rated(w: Watched, queryClass: string, model: string): number {
  const cls = w.gw.gateway.policy.snapshot().classes.find((c) => c.queryClass === queryClass);
  return cls?.arms.find((a) => a.model === model)?.rated ?? 0;
}

function implicitCount(text: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith('tracegate_feedback_total{') && l.includes('source="implicit"'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function feedbackOf(w: Watched, traceId: string) {
  const t = (await w.gw.gateway.store.get(traceId))!;
  return { feedback: t.feedback, feedbackSource: t.feedbackSource, feedbackComment: t.feedbackComment };
}

const UNRATED = { feedback: null, feedbackSource: null, feedbackComment: null };
const REGENERATED = { feedback: 0, feedbackSource: 'implicit', feedbackComment: 'regenerated' };

describe('router.implicit over HTTP', () => {
  it('a resend within the window marks the earlier answer (feedback 0, implicit), the policy hears it, and the metric counts it', async () => {
    const metricsBefore = implicitCount(await metricsText(main.gw, ADMIN));
    const convo: Message[] = [{ role: 'system', content: 'be brief' }, ...user('name three rivers')];
    const first = await chat(main.alice, convo);
    const ratedBefore = rated(main, first.queryClass, first.model);
    expect(await feedbackOf(main, first.traceId)).toEqual(UNRATED);

    // The same conversation, ending with the same user turn, again: a regenerate.
    const second = await chat(main.alice, convo);
    expect(main.marks.map((m) => m.id)).toEqual([first.traceId]);
    await expect.poll(() => feedbackOf(main, first.traceId), poll).toEqual(REGENERATED);
    expect(await feedbackOf(main, second.traceId)).toEqual(UNRATED);
    await expect.poll(() => rated(main, first.queryClass, first.model), poll).toBe(ratedBefore + 1);
    expect(main.heard.filter((f) => f.traceId === first.traceId)).toEqual([
      { traceId: first.traceId, queryClass: first.queryClass, model: first.model, outcome: 'success', score: 0, previous: null, source: 'implicit' },
    ]);

    // A third try marks the second answer; the first is marked once.
    const third = await chat(main.alice, convo);
    await expect.poll(() => feedbackOf(main, second.traceId), poll).toEqual(REGENERATED);
    expect(main.marks.map((m) => m.id)).toEqual([first.traceId, second.traceId]);
    expect(await feedbackOf(main, third.traceId)).toEqual(UNRATED);
    await expect.poll(async () => implicitCount(await metricsText(main.gw, ADMIN)), poll).toBe(metricsBefore + 2);
    const line = `tracegate_feedback_total{model="${first.model}",source="implicit"}`;
    expect((await metricsText(main.gw, ADMIN)).split('\n').some((l) => l.startsWith(`${line} `))).toBe(true);
  });

  it('a different conversation, or the same one from another client key, marks nothing', async () => {
    const marksBefore = main.marks.length;
    const first = await chat(main.alice, user('what is the capital of Peru?'));
    await chat(main.alice, user('what is the capital of Chile?'));
    await chat(main.alice, [{ role: 'system', content: 'answer in French' }, ...user('what is the capital of Peru?')]);
    // A new user turn after the first answer is a follow-up, not a resend.
    await chat(main.alice, [...user('what is the capital of Peru?'), { role: 'assistant', content: 'Lima.' }, ...user('and its population?')]);
    // The next step of a tool loop (the same user turn, then the call and its result) is not a resend.
    await chat(main.alice, [
      ...user('what is the capital of Peru?'),
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"country":"Peru"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'Lima' },
    ]);
    const bobs = await chat(main.bob, user('what is the capital of Peru?'));
    expect(main.marks.length).toBe(marksBefore);
    expect(await feedbackOf(main, first.traceId)).toEqual(UNRATED);

    // Bob's resend marks Bob's answer, not Alice's.
    await chat(main.bob, user('what is the capital of Peru?'));
    expect(main.marks.slice(marksBefore).map((m) => m.id)).toEqual([bobs.traceId]);
    await expect.poll(() => feedbackOf(main, bobs.traceId), poll).toEqual(REGENERATED);
    expect(await feedbackOf(main, first.traceId)).toEqual(UNRATED);
  });

  it('a resend after the window marks nothing', async () => {
    const first = await chat(brief.alice, user('tell me a joke about queues'));
    // The resend comes a second later than it does (the window is 0.2 s): the detector's clock is
    // moved on for it rather than waited for.
    const regenerated = RegenerationDetector.prototype.regenerated;
    const later = vi.spyOn(RegenerationDetector.prototype, 'regenerated').mockImplementation(function (this: RegenerationDetector, fingerprint, now) {
      return regenerated.call(this, fingerprint, now + 1000);
    });
    let second: Awaited<ReturnType<typeof chat>>;
    try {
      second = await chat(brief.alice, user('tell me a joke about queues'));
      expect(later).toHaveBeenCalledOnce();
    } finally {
      later.mockRestore();
    }
    expect(brief.marks).toEqual([]);
    expect(await feedbackOf(brief, first.traceId)).toEqual(UNRATED);
    expect(await feedbackOf(brief, second.traceId)).toEqual(UNRATED);
  });

  it("keeps a person's rating: the implicit 0 does not replace it, and the policy hears nothing of it", async () => {
    const first = await chat(main.alice, user('summarize the plot of Hamlet'));
    const res = await request(`${main.gw.url}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ALICE}` },
      body: JSON.stringify({ trace_id: first.traceId, feedback: 0.9, comment: 'great' }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    const heardBefore = main.heard.length;
    const metricsBefore = implicitCount(await metricsText(main.gw, ADMIN));

    await chat(main.alice, user('summarize the plot of Hamlet'));
    const mark = main.marks.find((m) => m.id === first.traceId);
    expect(mark).toBeDefined();
    const result = await mark!.done;
    expect(result).toMatchObject({ applied: false });
    expect(await feedbackOf(main, first.traceId)).toEqual({ feedback: 0.9, feedbackSource: 'human', feedbackComment: 'great' });
    expect(main.heard.slice(heardBefore).filter((f) => f.traceId === first.traceId)).toEqual([]);
    expect(implicitCount(await metricsText(main.gw, ADMIN))).toBe(metricsBefore);
  });

  it('a streamed answer is marked when its conversation is sent again', async () => {
    const first = await chat(main.alice, user('stream me a haiku'), true);
    await chat(main.alice, user('stream me a haiku'), true);
    expect(main.marks.map((m) => m.id)).toContain(first.traceId);
    await expect.poll(() => feedbackOf(main, first.traceId), poll).toEqual(REGENERATED);
  });

  it('router.implicit: false marks nothing', async () => {
    expect(off.gw.gateway.implicit).toBeNull();
    const first = await chat(off.alice, user('list the planets'));
    const second = await chat(off.alice, user('list the planets'));
    await chat(off.alice, user('list the planets'), true);
    expect(off.marks).toEqual([]);
    expect(off.heard).toEqual([]);
    expect(await feedbackOf(off, first.traceId)).toEqual(UNRATED);
    expect(await feedbackOf(off, second.traceId)).toEqual(UNRATED);
    expect(implicitCount(await metricsText(off.gw, ADMIN))).toBe(0);
  });
});
