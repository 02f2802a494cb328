import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';

/**
 * Over HTTP with the OpenAI SDK and simulated users who send thumbs on every answer:
 * 1. a `router.classes` rule gives requests with a customer-support system prompt a class of their
 *    own, and the (per-class) adaptive policy sends that class to the model that serves it best;
 * 2. the contextual policy learns a split the five built-in classes cannot see: legal reviews and
 *    poems are both `long`, and need different models — from the thumbs, each a rating that arrives
 *    after its answer; answers nobody rates teach it nothing about quality — and keeps it across a
 *    restart (it rebuilds from the stored text of the traces and their ratings).
 * One request at a time, with the policies (router.seed) and the users (mulberry32) seeded, every run
 * routes alike: 5 runs of this file sent the same requests to the same models.
 */

/** A small seeded PRNG, so the simulated users are the same on every run. */
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Shared text that makes every prompt long (> 500 characters), after the part that tells them apart. */
const FILLER =
  ' Please keep the answer well organised, plain and readable, with short paragraphs and no headings. ' +
  'Take your time, read everything twice, and mention anything that seems unclear or that needs more context before relying on it. '.repeat(3);

const LEGAL = ['indemnification', 'liability', 'termination', 'warranty', 'arbitration', 'confidentiality'];
const POETRY = ['autumn moon', 'falling leaves', 'a quiet harbour', 'winter light', 'the old orchard', 'morning rain'];

function legalPrompt(random: () => number): string {
  return `Review this contract clause on ${pick(random, LEGAL)} and ${pick(random, LEGAL)} for legal risk: the supplier shall hold the buyer harmless.${FILLER}`;
}

function poemPrompt(random: () => number): string {
  return `Write a rhyming sonnet about ${pick(random, POETRY)} and ${pick(random, POETRY)}, in iambic pentameter, tender and melancholic.${FILLER}`;
}

async function thumbs(gw: TestGateway, traceId: string, up: boolean): Promise<void> {
  const fb = await request(`${gw.url}/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trace_id: traceId, thumbs: up ? 'up' : 'down' }),
  });
  await fb.body.dump();
  expect(fb.statusCode).toBe(200);
}

interface Answer {
  kind: string;
  model: string;
  cls: string;
  reason: string;
}

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream.close();
});

describe('a router.classes rule on the system prompt (end to end)', () => {
  const QUALITY: Record<string, Record<string, number>> = {
    support: { helpdesk: 0.95, generalist: 0.3 },
    general: { helpdesk: 0.3, generalist: 0.92 },
  };
  let gw: TestGateway;
  const random = mulberry32(11);

  beforeAll(async () => {
    const model = (name: string) => ({ baseURL: upstream.baseURL, model: name, timeoutMs: 2000 });
    gw = await startTestGateway(upstream, {
      models: { generalist: model('generalist'), helpdesk: model('helpdesk') },
      router: {
        policy: 'adaptive',
        seed: 5,
        classes: [{ name: 'support', system: 'customer support' }],
      },
    });
  });
  afterAll(async () => {
    await gw.stop();
  });

  async function ask(kind: 'support' | 'general'): Promise<Answer> {
    const question = pick(random, ['My order has not arrived yet, what now?', 'How do I reset my password?', 'Can I change the delivery address?']);
    const messages =
      kind === 'support'
        ? [
            { role: 'system' as const, content: 'You are the customer support assistant of ACME. Be kind and precise.' },
            { role: 'user' as const, content: question },
          ]
        : [{ role: 'user' as const, content: question }];
    const { response } = await gw.client.chat.completions.create({ model: 'auto', messages }).withResponse();
    const model = response.headers.get('x-router-model')!;
    await thumbs(gw, response.headers.get('x-trace-id')!, random() < QUALITY[kind]![model]!);
    return { kind, model, cls: response.headers.get('x-router-class')!, reason: response.headers.get('x-router-reason')! };
  }

  it('names the class of requests with that system prompt, everywhere, and routes it to its best model', async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < 300; i++) answers.push(await ask(i % 2 === 0 ? 'support' : 'general'));
    // The same user questions: only the system prompt tells the classes apart.
    expect(answers.filter((a) => a.kind === 'support').every((a) => a.cls === 'support')).toBe(true);
    expect(answers.filter((a) => a.kind === 'general').every((a) => a.cls === 'short')).toBe(true);
    const late = answers.slice(200);
    const share = (kind: string, model: string) =>
      late.filter((a) => a.kind === kind && a.model === model).length / late.filter((a) => a.kind === kind).length;
    expect(share('support', 'helpdesk')).toBeGreaterThanOrEqual(0.9);
    expect(share('general', 'generalist')).toBeGreaterThanOrEqual(0.9);

    // The class is the trace's, and /stats shows it with its decision.
    const traces = await gw.gateway.store.list({});
    expect(traces.filter((t) => t.queryClass === 'support')).toHaveLength(150);
    const stats = await request(`${gw.url}/stats`);
    const body = (await stats.body.json()) as { classes: Record<string, { decision: string }> };
    expect(body.classes.support?.decision).toBe('helpdesk');
    expect(body.classes.short?.decision).toBe('generalist');
  });
});

describe('the contextual policy learns a split inside one class (end to end)', () => {
  const QUALITY: Record<string, Record<string, number>> = {
    legal: { lawyer: 0.93, poet: 0.25, generalist: 0.6 },
    poem: { lawyer: 0.25, poet: 0.93, generalist: 0.6 },
  };
  const BEST: Record<string, string> = { legal: 'lawyer', poem: 'poet' };
  let gw: TestGateway;
  let dir: string;
  const random = mulberry32(23);

  function overrides() {
    const model = (name: string) => ({ baseURL: upstream.baseURL, model: name, timeoutMs: 2000 });
    return {
      models: { generalist: model('generalist'), lawyer: model('lawyer'), poet: model('poet') },
      router: { policy: 'contextual', seed: 9 },
    };
  }

  beforeAll(async () => {
    dir = tempDir();
    gw = await startTestGateway(upstream, overrides(), { dir });
  });
  afterAll(async () => {
    await gw.stop();
  });

  async function ask(kind: 'legal' | 'poem'): Promise<Answer> {
    const content = kind === 'legal' ? legalPrompt(random) : poemPrompt(random);
    const { response } = await gw.client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }] }).withResponse();
    const model = response.headers.get('x-router-model')!;
    await thumbs(gw, response.headers.get('x-trace-id')!, random() < QUALITY[kind]![model]!);
    return { kind, model, cls: response.headers.get('x-router-class')!, reason: response.headers.get('x-router-reason')! };
  }

  async function traffic(n: number): Promise<Answer[]> {
    const out: Answer[] = [];
    for (let i = 0; i < n; i++) out.push(await ask(random() < 0.5 ? 'legal' : 'poem'));
    return out;
  }

  const shareToBest = (answers: Answer[], kind: string) =>
    answers.filter((a) => a.kind === kind && a.model === BEST[kind]).length / answers.filter((a) => a.kind === kind).length;

  it('sends ≥ 90% of each kind to its best model after 300 requests, though both are `long`', async () => {
    const warmup = await traffic(300);
    expect(warmup.every((a) => a.cls === 'long')).toBe(true);
    const measured = await traffic(100);
    expect(measured.every((a) => a.cls === 'long')).toBe(true);
    expect(shareToBest(measured, 'legal'), JSON.stringify(measured.map((a) => `${a.kind}:${a.model}`))).toBeGreaterThanOrEqual(0.9);
    expect(shareToBest(measured, 'poem')).toBeGreaterThanOrEqual(0.9);
    // Its own reason when it does not explore.
    expect(measured.filter((a) => a.reason === 'contextual').length).toBeGreaterThanOrEqual(80);

    // /stats: the class's estimates, and the features each model weighs most.
    const stats = await request(`${gw.url}/stats`);
    const body = (await stats.body.json()) as { policy: string; features: Record<string, { feature: string; weight: number }[]> };
    expect(body.policy).toBe('contextual');
    expect(Object.keys(body.features).sort()).toEqual(['generalist', 'lawyer', 'poet']);
    expect(body.features.lawyer![0]!.feature).toBe('(bias)');
    expect(body.features.lawyer!.length).toBeGreaterThan(1);
  });

  it('learns nothing about quality from answers nobody rates: 100 unrated legal reviews pinned to the poet leave them with the lawyer', async () => {
    for (let i = 0; i < 100; i++) {
      const { response } = await gw.client.chat.completions
        .create({ model: 'poet', messages: [{ role: 'user', content: legalPrompt(random) }] })
        .withResponse();
      expect(response.headers.get('x-router-model')).toBe('poet');
    }
    const measured = await traffic(60);
    expect(shareToBest(measured, 'legal')).toBeGreaterThanOrEqual(0.9);
    expect(shareToBest(measured, 'poem')).toBeGreaterThanOrEqual(0.9);
  });

  it('routes the same after a restart, from the first request (rebuilt from the stored prompts)', async () => {
    await gw.close();
    gw = await startTestGateway(upstream, overrides(), { dir });
    const measured = await traffic(60);
    expect(shareToBest(measured, 'legal')).toBeGreaterThanOrEqual(0.9);
    expect(shareToBest(measured, 'poem')).toBeGreaterThanOrEqual(0.9);
    const early = measured.slice(0, 20);
    expect(early.filter((a) => a.model === BEST[a.kind]).length / early.length).toBeGreaterThanOrEqual(0.85);
  });
});
