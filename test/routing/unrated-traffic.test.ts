import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { ask, BEST, CLASSES, estimates, mulberry32, score, shareToBest, truthModels, type Answer } from '../helpers/truth-table.js';

/**
 * One gateway (embedded SQLite) learns from a person's ratings which model is best per class, then
 * serves traffic nobody rates. An unrated answer is no evidence of quality: the estimates stay where
 * the ratings put them, and so does the routing. (Counted as a perfect answer, as the policy once
 * counted it, each unrated answer lifts its model's estimate: coder's on code goes from 0.88 to 0.95
 * over the unrated phase here.)
 */

const TEACH = 240;
const UNRATED = 300;
/** The smallest share of each class's unrated requests its best model must answer. */
const BOUND = 0.9;

let upstream: FakeUpstream;
let dir: string;
let gw: TestGateway;
const random = mulberry32(5);

function overrides() {
  return { models: truthModels(upstream.baseURL), router: { policy: 'adaptive', halfLife: 50, seed: 3 } };
}

type Stats = Parameters<typeof estimates>[0] & {
  total_traces: number;
  feedback_by_source: Record<string, number>;
  classes: Record<string, { decision: string | null }>;
};

async function stats(): Promise<Stats> {
  return (await (await request(`${gw.url}/stats`)).body.json()) as Stats;
}

async function rate(a: Answer): Promise<void> {
  const res = await request(`${gw.url}/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trace_id: a.traceId, feedback: score(a.cls, a.model, random) }),
  });
  await res.body.dump();
  expect(res.statusCode).toBe(200);
}

/** `n` requests, the classes in turn, one at a time; each answer rated when `rated`. */
async function traffic(n: number, rated: boolean): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < n; i++) {
    const a = await ask(gw.client, CLASSES[i % CLASSES.length]!);
    if (rated) await rate(a);
    answers.push(a);
  }
  return answers;
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = tempDir();
  gw = await startTestGateway(upstream, overrides(), { dir });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('adaptive with traffic nobody rates (silence is not praise)', () => {
  let learned: ReturnType<typeof estimates>;

  it('learns the best model per class from ratings', async () => {
    const taught = await traffic(TEACH, true);
    const s = await stats();
    for (const cls of CLASSES) expect(s.classes[cls]?.decision, cls).toBe(BEST[cls]);
    // Each class's best model is rated, and estimated well above the others (the price prior, 15
    // pseudo-ratings, keeps a model rated a few times near what the class's rated models say).
    learned = estimates(s);
    for (const cls of CLASSES) {
      const best = learned[`${cls}/${BEST[cls]}`]!;
      expect(best.rated, cls).toBeGreaterThan(20);
      for (const [key, e] of Object.entries(learned)) {
        if (key.startsWith(`${cls}/`) && key !== `${cls}/${BEST[cls]}`) expect(e.estimate!, key).toBeLessThan(best.estimate! - 0.15);
      }
    }
    expect(s.feedback_by_source.human).toBe(TEACH);
    // The last quarter of the teaching already goes mostly to the best models.
    const late = shareToBest(taught.slice((3 * TEACH) / 4));
    for (const cls of CLASSES) expect(late[cls], JSON.stringify(late)).toBeGreaterThanOrEqual(0.7);
  });

  it(`then routes each class to its best model through ${UNRATED} unrated requests, and the estimates do not move`, async () => {
    const before = await stats();
    const unrated = await traffic(UNRATED, false);
    const share = shareToBest(unrated);
    // One request at a time, the policy and the rater seeded: every run routes alike (5 runs of this
    // file sent the same requests to the same models). The share is 1 for both classes here, and
    // 0.967–1 with router seeds 1–8 (and the rater's seed alike).
    for (const cls of CLASSES) expect(share[cls], JSON.stringify(share)).toBeGreaterThanOrEqual(BOUND);

    const after = await stats();
    expect(after.total_traces).toBe(before.total_traces + UNRATED);
    expect(after.feedback_by_source).toEqual(before.feedback_by_source);
    for (const cls of CLASSES) expect(after.classes[cls]?.decision, cls).toBe(BEST[cls]);
    // The traces were recorded, and no quality evidence came with them: not one estimate moved.
    const now = estimates(after);
    for (const [key, e] of Object.entries(learned)) {
      expect(Math.abs(now[key]!.estimate! - e.estimate!), `${key}: ${e.estimate} → ${now[key]!.estimate}`).toBeLessThan(1e-9);
      expect(now[key]!.rated, key).toBe(e.rated);
    }
  });

  it('rebuilt from the store after a restart, the estimates are the same and unrated traffic still goes to the best models', async () => {
    await gw.close();
    gw = await startTestGateway(upstream, overrides(), { dir });
    const rebuilt = estimates(await stats());
    for (const [key, e] of Object.entries(learned)) {
      expect(Math.abs(rebuilt[key]!.estimate! - e.estimate!), `${key}: ${e.estimate} → ${rebuilt[key]!.estimate}`).toBeLessThan(1e-6);
      expect(rebuilt[key]!.rated, key).toBe(e.rated);
    }
    const share = shareToBest(await traffic(100, false));
    for (const cls of CLASSES) expect(share[cls], JSON.stringify(share)).toBeGreaterThanOrEqual(BOUND);
  });
});
