import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';

/**
 * Simulated traffic over HTTP with the OpenAI SDK: each model is best at one kind of query, one model
 * fails half of the time, and a simulated user sends feedback on every answer. One request at a time,
 * with the policy (router.seed) and the user (mulberry32) seeded, every run routes alike: 5 runs of
 * this file sent the same requests to the same models.
 */

const QUALITY: Record<string, Record<string, number>> = {
  // class → model → probability of a thumbs-up
  code: { coder: 0.92, mathy: 0.35, chatty: 0.7, flaky: 0.8 },
  math: { coder: 0.4, mathy: 0.92, chatty: 0.45, flaky: 0.8 },
  short: { coder: 0.45, mathy: 0.4, chatty: 0.92, flaky: 0.8 },
};
const BEST: Record<string, string> = { code: 'coder', math: 'mathy', short: 'chatty' };
const RUNNER_UP_FOR_CODE = 'chatty';
const PROMPTS: Record<string, string[]> = {
  code: ['Fix this: ```js\nconst x = 1\n```', 'def add(a, b): return a + b  — why does it fail?', 'Explain `Array.prototype.map` to me please'],
  math: ['Solve x^2 - 4 = 0 for x, showing each step please', 'Compute the integral of x^2 from 0 to 3 for me', 'Calculate 17% of 2,340 and round it to two decimals'],
  short: ['hi!', 'what time zone is Paris in?', 'thanks, that helped'],
};

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

let upstream: FakeUpstream;
let dir: string;
let gw: TestGateway;
const random = mulberry32(42);

function overrides() {
  const model = (name: string) => ({ baseURL: upstream.baseURL, model: name, timeoutMs: 2000 });
  return {
    models: { coder: model('coder'), mathy: model('mathy'), chatty: model('chatty'), flaky: model('flaky') },
    router: { policy: 'adaptive', defaultModel: 'chatty', maxAttempts: 3, halfLife: 50, seed: 7 },
  };
}

interface Turn {
  cls: string;
  first: string;
  answered: string;
  reason: string;
  status: number;
}

/** One request of a class, then feedback from the simulated user on the model that answered. */
async function turn(cls: string): Promise<Turn> {
  const prompts = PROMPTS[cls]!;
  const content = prompts[Math.floor(random() * prompts.length)]!;
  const { response } = await gw.client.chat.completions
    .create({ model: 'auto', messages: [{ role: 'user', content }] })
    .withResponse();
  expect(response.headers.get('x-router-class')).toBe(cls);
  const answered = response.headers.get('x-router-model')!;
  const reason = response.headers.get('x-router-reason')!;
  const traceId = response.headers.get('x-trace-id')!;
  const thumbs = random() < QUALITY[cls]![answered]! ? 'up' : 'down';
  const fb = await request(`${gw.url}/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trace_id: traceId, thumbs }),
  });
  await fb.body.dump();
  expect(fb.statusCode).toBe(200);
  // The first choice: the model that failed first when the answer came by failover.
  let first = answered;
  if (reason === 'failover') {
    const attempts = (await gw.gateway.store.list({})).filter((t) => t.requestId === response.headers.get('x-request-id'));
    first = attempts.find((t) => t.attempt === 1)!.modelKey;
  }
  return { cls, first, answered, reason, status: response.status };
}

async function traffic(n: number): Promise<Turn[]> {
  const classes = Object.keys(QUALITY);
  const turns: Turn[] = [];
  for (let i = 0; i < n; i++) turns.push(await turn(classes[i % classes.length]!));
  return turns;
}

function shareToBest(turns: Turn[]): Record<string, number> {
  const share: Record<string, number> = {};
  for (const cls of Object.keys(QUALITY)) {
    const mine = turns.filter((t) => t.cls === cls);
    share[cls] = mine.filter((t) => t.first === BEST[cls]).length / mine.length;
  }
  return share;
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  // flaky answers every other request with a 500.
  upstream.script('flaky', (_r, n) => (n % 2 === 0 ? { kind: 'status', status: 500 } : { kind: 'answer' }));
  dir = tempDir();
  gw = await startTestGateway(upstream, overrides(), { dir });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

describe('the adaptive policy learns from traffic and feedback (end to end)', () => {
  it('after 800 requests sends ≥ 90% of each class to its best model', async () => {
    const warmup = await traffic(800);
    expect(warmup.every((t) => t.status === 200)).toBe(true);
    const measured = await traffic(150);
    const share = shareToBest(measured);
    for (const cls of Object.keys(QUALITY)) expect(share[cls], `${cls}: ${JSON.stringify(share)}`).toBeGreaterThanOrEqual(0.9);
  });

  it('routes the same after a restart, from the first request', async () => {
    await gw.close();
    gw = await startTestGateway(upstream, overrides(), { dir });
    const measured = await traffic(150);
    const share = shareToBest(measured);
    for (const cls of Object.keys(QUALITY)) expect(share[cls], `${cls}: ${JSON.stringify(share)}`).toBeGreaterThanOrEqual(0.9);
    // From the very first requests, not after relearning:
    const early = measured.slice(0, 30);
    expect(early.filter((t) => t.first === BEST[t.cls]).length / early.length).toBeGreaterThanOrEqual(0.9);
  });

  it('moves a class to the runner-up within ~50 requests when its best model starts failing, answering every request', async () => {
    upstream.script('coder', { kind: 'status', status: 503 });
    const turns: Turn[] = [];
    for (let i = 0; i < 80; i++) turns.push(await turn('code'));
    expect(turns.every((t) => t.status === 200)).toBe(true);
    // Within ~50 requests the class has moved: from then on the runner-up is the first choice.
    const after = turns.slice(50);
    const firstChoices = after.map((t) => t.first);
    expect(firstChoices.filter((m) => m === 'coder').length / after.length, firstChoices.join(',')).toBeLessThanOrEqual(0.1);
    expect(firstChoices.filter((m) => m === RUNNER_UP_FOR_CODE).length / after.length, firstChoices.join(',')).toBeGreaterThanOrEqual(0.8);
  });
});
