import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { getJson, postJson, startMember, stopMember, synced, type FleetMember } from './fleet.js';

/**
 * Two `tracegate serve` processes on one PostgreSQL database learn as one: traffic is spread over
 * both with the OpenAI SDK, and each answer's feedback goes to the other instance. Each instance has
 * its own upstream server (same simulated models), so a model can break on one instance's traffic only.
 */

const pgSkip = await pgUnavailable();

const QUALITY: Record<string, Record<string, number>> = {
  // class → model → probability of a thumbs-up
  code: { coder: 0.92, mathy: 0.35, chatty: 0.7, flaky: 0.8 },
  math: { coder: 0.4, mathy: 0.92, chatty: 0.45, flaky: 0.8 },
  short: { coder: 0.45, mathy: 0.4, chatty: 0.92, flaky: 0.8 },
};
const BEST: Record<string, string> = { code: 'coder', math: 'mathy', short: 'chatty' };
const PROMPTS: Record<string, string[]> = {
  code: ['Fix this: ```js\nconst x = 1\n```', 'def add(a, b): return a + b  — why does it fail?', 'Explain `Array.prototype.map` to me please'],
  math: ['Solve x^2 - 4 = 0 for x, showing each step please', 'Compute the integral of x^2 from 0 to 3 for me', 'Calculate 17% of 2,340 and round it to two decimals'],
  short: ['hi!', 'what time zone is Paris in?', 'thanks, that helped'],
};
const SYNC_MS = 500;

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

interface Member extends FleetMember {
  upstream: FakeUpstream;
  client: OpenAI;
}

let db: TestDatabase;
let dir: string;
const members: Member[] = [];
const random = mulberry32(11);

async function start(id: string, seed: number): Promise<Member> {
  const upstream = await startFakeUpstream();
  upstream.script('flaky', (_r, n) => (n % 2 === 0 ? { kind: 'status', status: 500 } : { kind: 'answer' }));
  const model = (name: string) => ({ baseURL: upstream.baseURL, model: name, timeoutMs: 5000 });
  const member = await startMember(dir, id, {
    database: { url: db.url, poolSize: 4 },
    models: { coder: model('coder'), mathy: model('mathy'), chatty: model('chatty'), flaky: model('flaky') },
    // No circuit breaker: what moves traffic off a broken model here is what the fleet learned.
    router: { policy: 'adaptive', defaultModel: 'chatty', maxAttempts: 3, halfLife: 50, seed, syncIntervalMs: SYNC_MS, circuitBreaker: { failures: 0 } },
  });
  return { ...member, upstream, client: new OpenAI({ baseURL: `${member.url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

interface Turn {
  cls: string;
  first: string;
  /** Every model tried for the request, in order (more than one after a failover). */
  tried: string[];
  answeredBy: string;
}

/** One request of a class to `to`; the simulated user's thumbs go to `feedbackTo`. */
async function turn(cls: string, to: Member, feedbackTo: Member): Promise<Turn> {
  const prompts = PROMPTS[cls]!;
  const content = prompts[Math.floor(random() * prompts.length)]!;
  const { response } = await to.client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content }] }).withResponse();
  expect(response.headers.get('x-router-class')).toBe(cls);
  const answered = response.headers.get('x-router-model')!;
  const thumbs = random() < QUALITY[cls]![answered]! ? 'up' : 'down';
  expect(await postJson(`${feedbackTo.url}/feedback`, { trace_id: response.headers.get('x-trace-id'), thumbs })).toBe(200);
  let tried = [answered];
  if (response.headers.get('x-router-reason') === 'failover') {
    const rows = await db.query<{ model_key: string }>('SELECT model_key FROM traces WHERE request_id = $1 ORDER BY attempt', [
      response.headers.get('x-request-id'),
    ]);
    tried = rows.map((r) => r.model_key);
  }
  return { cls, first: tried[0]!, tried, answeredBy: to.id };
}

/** `n` requests over the classes in turn, alternating between the instances; feedback to the other one. */
async function traffic(n: number, only?: Member): Promise<Turn[]> {
  const classes = Object.keys(QUALITY);
  const turns: Turn[] = [];
  // Two clients at a time, as two users would.
  for (let i = 0; i < n; i += 2) {
    const pair = [0, 1].map((k) => {
      const to = only ?? members[(i + k) % 2]!;
      const other = members.find((m) => m !== to)!;
      return turn(classes[(i + k) % classes.length]!, to, other);
    });
    turns.push(...(await Promise.all(pair)));
  }
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

interface StatsBody {
  total_traces: number;
  instances: Record<string, { count: number; share: number }>;
  classes: Record<string, { decision: string | null }>;
}

describe.skipIf(pgSkip !== null)(`a fleet of two gateways on one PostgreSQL${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    members.push(await start('gw-a', 1), await start('gw-b', 2));
  }, 60_000);
  afterAll(async () => {
    for (const m of members) {
      await stopMember(m);
      await m.upstream.close();
    }
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('both converge to the best model per class, with feedback sent to the other instance', async () => {
    // The policies and the simulated users are seeded, but two clients at a time, two processes,
    // pushed feedback and timed syncs interleave differently on every run, so the shares vary.
    // Over 5 runs of this file (two cores shared with other work, load average 5–11), each class
    // sent 98–100% of its measured requests to its best model in all, and 96–100% on each instance.
    // Thompson sampling can leave a class's best model behind for a while when its first answers
    // drew thumbs down (test/routing/adaptive.test.ts measures how often), and the fleet shares that
    // record: simulated (the policy alone), a class is under 80% after 1,500 requests in 0.2% of
    // seeds. Hence bounds of 80% in all and 75% per instance. Instances that do not learn from each
    // other's feedback (syncIntervalMs 0) count every answer as good and send 40–43% of each class
    // to its best model.
    const warmup = await traffic(1500);
    expect(warmup.length).toBe(1500);
    await synced(members);
    const measured = await traffic(300);
    const fleet = shareToBest(measured);
    for (const cls of Object.keys(QUALITY)) expect(fleet[cls], `fleet ${cls}: ${JSON.stringify(fleet)}`).toBeGreaterThanOrEqual(0.8);
    for (const m of members) {
      const share = shareToBest(measured.filter((t) => t.answeredBy === m.id));
      for (const cls of Object.keys(QUALITY)) expect(share[cls], `${m.id} ${cls}: ${JSON.stringify(share)}`).toBeGreaterThanOrEqual(0.75);
      const { body } = await getJson<StatsBody>(`${m.url}/stats`);
      for (const cls of Object.keys(QUALITY)) expect(body.classes[cls]?.decision, `${m.id} ${cls}`).toBe(BEST[cls]);
    }
  }, 120_000);

  it('/stats on either instance shows the whole fleet, per instance', async () => {
    const [a, b] = await Promise.all([getJson<StatsBody>(`${members[0]!.url}/stats`), getJson<StatsBody>(`${members[1]!.url}/stats`)]);
    const total = (await db.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM traces'))[0]!.n;
    expect(a.body.total_traces).toBe(total);
    expect(b.body.total_traces).toBe(total);
    expect(Object.keys(a.body.instances).sort()).toEqual(['gw-a', 'gw-b']);
    expect(a.body.instances['gw-a']!.count + a.body.instances['gw-b']!.count).toBe(total);
    expect(a.body.instances).toEqual(b.body.instances);
  });

  it('a model that breaks on one instance\'s traffic is left by both', async () => {
    const [a, b] = members as [Member, Member];
    // coder breaks (behind both instances), but only gw-a's traffic finds out: code goes to gw-a alone.
    for (const m of members) m.upstream.script('coder', { kind: 'status', status: 503 });
    const decisions = async () =>
      Promise.all(members.map(async (m) => (await getJson<StatsBody>(`${m.url}/stats`)).body.classes.code?.decision));
    let sent = 0;
    for (;;) {
      for (let i = 0; i < 20; i++) await turn('code', a, b);
      sent += 20;
      await synced(members);
      const [onA, onB] = await decisions();
      if (onA !== 'coder' && onB !== 'coder') break;
      // About 20 failures outweigh coder's record (20–60 requests over 5 runs); give it a bounded number.
      expect(sent, `after ${sent} code requests to gw-a: gw-a decides ${onA}, gw-b ${onB}`).toBeLessThan(150);
    }
    // The outage goes on for a while on gw-a's traffic.
    for (let i = 0; i < 20; i++) await turn('code', a, b);
    await synced(members);
    const coderOnB = b.upstream.received.filter((r) => r.model === 'coder').length;
    // gw-b, which never saw coder fail, has left it: it sent ≥ 80% of code there before, and without
    // gw-a's failures it would go on doing so. What is left is exploration, and Thompson sampling
    // explores a just-dethroned model for a while: forgetting is per arm, so coder's good record
    // fades only as coder is tried (and fails) again. Over 5 runs of this file coder got 3–4 of
    // these 30 requests. Simulated in-process (the policy alone, 20,000 seeds of this scenario), it
    // gets 0–17, more than 12 in 0.15% of seeds, and more than 2 of the last 15 in 22%: hence a
    // bound of 12 on all 30 rather than one on the last 15.
    const after: Turn[] = [];
    for (let i = 0; i < 30; i++) after.push(await turn('code', b, a));
    const firstChoices = after.map((t) => t.first);
    const coder = (turns: string[]) => turns.filter((m) => m === 'coder').length;
    expect(coder(firstChoices), firstChoices.join(',')).toBeLessThanOrEqual(12);
    // Every request coder got from gw-b is one gw-b chose to send: first choices, and failovers from
    // another model that failed (flaky does, every other time).
    expect(b.upstream.received.filter((r) => r.model === 'coder').length - coderOnB).toBe(coder(after.flatMap((t) => t.tried)));
    // Both rebuild from the same store: after a sync they agree.
    await synced(members);
    const [onA, onB] = await decisions();
    expect(onA).toBe(onB);
  }, 120_000);
});
