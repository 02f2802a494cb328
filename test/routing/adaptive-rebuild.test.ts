/*
 * AdaptivePolicy.updateFromTraces: a rebuild from the store gives the state the online updates built,
 * over simulated histories of traces and late ratings.
 */
import { describe, it, expect } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { discountFactor } from '../../src/routing/prior.js';
import { Random } from '../../src/routing/random.js';
import type { EvidenceSource, ModelInfo } from '../../src/routing/types.js';
import { DEFAULT_SOURCE_WEIGHTS } from '../../src/core/config.js';
import { qualitySums, ratingWeight } from '../../src/routing/prior.js';
import type { FeedbackSource, Outcome } from '../../src/traces/types.js';
import { FakeEvidenceSource, reliabilityOf, type FakeTrace } from './fake-evidence.js';

import { free, observation, options } from './adaptive-fixtures.js';

/** Numbers the simulated histories' traces and ratings. */
let seq = 0;

/** The arm's raw sums (it must exist). */
function armSums(p: AdaptivePolicy, queryClass: string, model: string) {
  const arm = p.armState(queryClass, model);
  if (arm === undefined) throw new Error(`no arm ${queryClass}/${model}`);
  return arm;
}


/** One event of a simulated history, in arrival order: a finished attempt, or a rating given after it. */
type HistoryEvent = { kind: 'trace'; trace: FakeTrace } | { kind: 'feedback'; id: string; time: number; score: number; source: FeedbackSource };

/**
 * Random trace-like records: about one answer in ten rated when observed and one in five rated later
 * (by a human, the judge or an implicit signal), at a trace among the 300 newest. With `replace`, a late
 * rating may land on a trace already rated, and sometimes comes twice; without, it lands only on
 * traces that have none (or on a failure, which it does not change).
 */
function history(n: number, env: Random, replace: boolean): HistoryEvent[] {
  const classes = ['code', 'math', 'long'];
  const models = ['a', 'b', 'c', 'd'];
  const sources: FeedbackSource[] = ['human', 'judge', 'implicit'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(env.uniform() * list.length)] as T;
  const events: HistoryEvent[] = [];
  const traces: FakeTrace[] = [];
  const rated = new Set<string>();
  for (let i = 0; i < n; i++) {
    const u = env.uniform();
    const outcome: Outcome = u < 0.7 ? 'success' : u < 0.85 ? 'error' : u < 0.95 ? 'timeout' : 'cancelled';
    const feedback = env.uniform() < 0.1 ? Math.round(env.uniform() * 100) / 100 : null;
    seq += 1;
    const trace: FakeTrace = {
      id: `h${seq}`,
      time: seq,
      queryClass: pick(classes),
      model: pick(models),
      outcome,
      feedback,
      feedbackSource: feedback === null ? null : pick(sources),
      costUsd: env.uniform() < 0.2 ? null : env.uniform() * 0.01,
      latencyMs: Math.round(env.uniform() * 2000),
    };
    events.push({ kind: 'trace', trace });
    traces.push(trace);
    if (feedback !== null) rated.add(trace.id);
    if (env.uniform() < 0.2) {
      const target = pick(traces.slice(-300));
      if (!replace && rated.has(target.id)) continue;
      for (let k = replace && env.uniform() < 0.3 ? 2 : 1; k > 0; k--) {
        seq += 1;
        events.push({ kind: 'feedback', id: target.id, time: seq, score: Math.round(env.uniform() * 100) / 100, source: pick(sources) });
        rated.add(target.id);
      }
    }
  }
  return events;
}

/** Records the events in the store (traces copied, ratings at their own time) and has each policy observe them. */
function apply(events: readonly HistoryEvent[], store: FakeEvidenceSource, ...policies: AdaptivePolicy[]): void {
  for (const event of events) {
    if (event.kind === 'trace') {
      const { trace } = event;
      store.add({ ...trace });
      for (const policy of policies) {
        policy.observe({
          traceId: trace.id,
          query: '',
          queryClass: trace.queryClass,
          model: trace.model,
          outcome: trace.outcome,
          latencyMs: trace.latencyMs,
          costUsd: trace.costUsd,
          feedback: trace.feedback,
          feedbackSource: trace.feedbackSource ?? undefined,
        });
      }
    } else {
      const target = store.traces.find((t) => t.id === event.id) as FakeTrace;
      const previous = target.feedback;
      store.setFeedback(event.id, event.score, event.source, event.time);
      for (const policy of policies) {
        policy.observeFeedback({ traceId: event.id, queryClass: target.queryClass, model: target.model, outcome: target.outcome, score: event.score, previous, source: event.source });
      }
    }
  }
}

/** Per arm, how many of the events replace a rating the trace already had (a failure's do not count). */
function replacements(events: readonly HistoryEvent[]): Map<string, number> {
  const traces = new Map<string, FakeTrace>();
  const current = new Map<string, { score: number; weight: number }>();
  const counts = new Map<string, number>();
  for (const event of events) {
    if (event.kind === 'trace') {
      traces.set(event.trace.id, event.trace);
      const { feedback, feedbackSource } = event.trace;
      if (event.trace.outcome === 'success' && feedback !== null) current.set(event.trace.id, { score: feedback, weight: ratingWeight(feedbackSource, DEFAULT_SOURCE_WEIGHTS) });
      continue;
    }
    const trace = traces.get(event.id) as FakeTrace;
    if (trace.outcome !== 'success') continue;
    const old = current.get(event.id);
    const weight = ratingWeight(event.source, DEFAULT_SOURCE_WEIGHTS);
    if (old !== undefined && !(old.score === event.score && old.weight === weight)) {
      const key = `${trace.queryClass}/${trace.model}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    current.set(event.id, { score: event.score, weight });
  }
  return counts;
}

const ARM_FIELDS = ['weight', 'quality', 'qualityWeight', 'record', 'recordWeight', 'costSum', 'costCount', 'latencySumMs'] as const;

/** The arms' sums agree (`fields` of armState, and the reliability sums), and so do their counts of traces and rated answers. */
function expectSameArms(a: AdaptivePolicy, b: AdaptivePolicy, fields: readonly (typeof ARM_FIELDS)[number][] = ARM_FIELDS): void {
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const x = a.armState(cls, model);
      const y = b.armState(cls, model);
      expect(y?.count, `${cls}/${model}`).toBe(x?.count);
      if (x === undefined) continue;
      expect(y?.rated, `${cls}/${model} rated`).toBe(x?.rated);
      const rx = reliabilityOf(a, cls, model)!.successes;
      const ry = reliabilityOf(b, cls, model)!.successes;
      expect(Math.abs(rx - ry), `${cls}/${model} successes: ${rx} vs ${ry}`).toBeLessThanOrEqual(1e-9 * Math.max(1, rx));
      for (const field of fields) {
        const xv = x?.[field] ?? NaN;
        const yv = y?.[field] ?? NaN;
        expect(Math.abs(xv - yv), `${cls}/${model} ${field}: ${xv} vs ${yv}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(xv)));
      }
    }
  }
}

/**
 * The store's quality evidence (forgetting γ per newer piece of quality evidence of the arm, ratings
 * and failures) as the policy weighs it: the ratings' sums, and the rated answers (`observations −
 * failures` of the undiscounted read).
 */
async function storeQuality(store: FakeEvidenceSource, gamma: number): Promise<Map<string, { weight: number; sum: number; rated: number }>> {
  const rows = await store.qualityEvidence({ decay: gamma, source: 'live' });
  const raw = new Map((await store.qualityEvidence({ source: 'live' })).map((row) => [`${row.queryClass}/${row.model}`, row.observations - row.failures]));
  return new Map(rows.map((row) => [`${row.queryClass}/${row.model}`, { ...qualitySums(row, DEFAULT_SOURCE_WEIGHTS), rated: raw.get(`${row.queryClass}/${row.model}`) ?? 0 }]));
}

/** The whole record (no forgetting): what the store sums without decay. */
async function expectStoreRecord(policy: AdaptivePolicy, store: FakeEvidenceSource): Promise<void> {
  const sums = await storeQuality(store, 1);
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const arm = policy.armState(cls, model);
      const want = sums.get(`${cls}/${model}`) ?? { weight: 0, sum: 0, rated: 0 };
      expect(Math.abs((arm?.recordWeight ?? 0) - want.weight), `${cls}/${model} recordWeight`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.weight));
      expect(Math.abs((arm?.record ?? 0) - want.sum), `${cls}/${model} record`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.sum));
    }
  }
}

/** The policy's quality sums (the recent window and the whole record) are the store's, exactly. */
async function expectStoreQuality(policy: AdaptivePolicy, store: FakeEvidenceSource, gamma: number): Promise<void> {
  await expectStoreRecord(policy, store);
  const sums = await storeQuality(store, gamma);
  for (const cls of ['code', 'math', 'long']) {
    for (const model of ['a', 'b', 'c', 'd']) {
      const arm = policy.armState(cls, model);
      const want = sums.get(`${cls}/${model}`) ?? { weight: 0, sum: 0, rated: 0 };
      expect(arm?.rated ?? 0, `${cls}/${model} rated`).toBe(want.rated);
      expect(Math.abs((arm?.qualityWeight ?? 0) - want.weight), `${cls}/${model} qualityWeight`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.weight));
      expect(Math.abs((arm?.quality ?? 0) - want.sum), `${cls}/${model} quality`).toBeLessThanOrEqual(1e-9 * Math.max(1, want.sum));
    }
  }
}

describe('AdaptivePolicy.updateFromTraces', () => {
  const models: ModelInfo[] = [
    { key: 'a', inputCostPerMTok: 1, outputCostPerMTok: 2 },
    { key: 'b', inputCostPerMTok: 3, outputCostPerMTok: 15 },
    free('c'),
    { key: 'd', inputCostPerMTok: 0.1, outputCostPerMTok: 0.1 },
  ];

  it('reports a missing source, and an empty store', async () => {
    expect(await new AdaptivePolicy(options(models)).updateFromTraces()).toEqual({ error: 'no analyzer configured' });
    const empty = new AdaptivePolicy(options(models, { source: new FakeEvidenceSource() }));
    expect(await empty.updateFromTraces()).toEqual({ updated: false, reason: 'no traces' });
  });

  it('rebuilds exactly the state that online observation produced (a restart routes as before)', async () => {
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01 }));
    // Ratings given when the answer is observed and later, by every source; none replaces another.
    apply(history(1500, new Random(3), false), store, online);
    await expectStoreQuality(online, store, gamma);

    const restarted = new AdaptivePolicy(options(models, { seed: 11, costWeight: 5, latencyWeight: 0.01, source: store }));
    const summary = await restarted.updateFromTraces();
    expect(store.evidenceCalls).toEqual([
      { since: undefined, until: undefined, decay: gamma, source: 'live' },
      { since: undefined, until: undefined, source: 'offline' },
    ]);
    expect(store.recentCalls).toEqual([2000]);
    expect(summary).toMatchObject({ updated: true, query_classes: 3, total_traces: 1500 });
    expectSameArms(online, restarted);

    // Same state and same seed: the same decisions.
    const route = (policy: AdaptivePolicy) =>
      Array.from({ length: 300 }, (_, i) => policy.select({ query: '', queryClass: ['code', 'math', 'long'][i % 3] as string, available: ['a', 'b', 'c', 'd'] }).model);
    expect(route(restarted)).toEqual(route(online));

    // Late ratings on unrated traces that the rebuild remembers (not the newest of their arm) land identically.
    const unrated = store.traces.slice(-60, -20).filter((t) => t.outcome === 'success' && t.feedback === null);
    expect(unrated.length).toBeGreaterThan(5);
    const late: HistoryEvent[] = unrated.map((t, i) => ({ kind: 'feedback', id: t.id, time: (seq += 1), score: 0.33, source: i % 2 === 0 ? 'human' : 'judge' }));
    apply(late, store, online, restarted);
    expectSameArms(online, restarted);
    await expectStoreQuality(restarted, store, gamma);

    // And both keep learning alike.
    apply(history(200, new Random(9), false), store, online, restarted);
    expectSameArms(online, restarted);
    await expectStoreQuality(online, store, gamma);
  });

  it('with ratings that replace earlier ones, online forgetting runs ahead of the store by at most γ per replacement', async () => {
    // A replaced rating leaves the arm, but the discount its arrival gave the arm's older evidence
    // stays: online, each replacement weighs the evidence older than the replaced rating γ more than
    // the store does. The whole record, which does not forget, stays exact, and so does the count of
    // rated answers (a replaced rating counts once). The rebuild reads the store's sums.
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models, { seed: 11 }));
    const events = history(1500, new Random(3), true);
    apply(events, store, online);
    const replaced = replacements(events);
    expect([...replaced.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    await expectStoreRecord(online, store);
    const sums = await storeQuality(store, gamma);
    for (const [key, want] of sums) {
      const [cls, model] = key.split('/') as [string, string];
      const arm = armSums(online, cls, model);
      const r = replaced.get(key) ?? 0;
      expect(arm.rated, key).toBe(want.rated);
      for (const [got, full] of [
        [arm.qualityWeight, want.weight],
        [arm.quality, want.sum],
      ] as const) {
        expect(got, key).toBeLessThanOrEqual(full + 1e-9);
        expect(got, key).toBeGreaterThanOrEqual(Math.pow(gamma, r) * full - 1e-9);
      }
    }

    const restarted = new AdaptivePolicy(options(models, { seed: 11, source: store }));
    await restarted.updateFromTraces();
    await expectStoreQuality(restarted, store, gamma);
    // What does not forget ratings is the same, and so are the counts of rated answers.
    expectSameArms(online, restarted, ['weight', 'record', 'recordWeight', 'costSum', 'costCount', 'latencySumMs']);
  });

  it('after a rebuild, a rating that replaces a remembered one is taken out as if it were the arm’s newest', async () => {
    // The store does not say where a remembered trace's rating sits among the arm's evidence, so its
    // replacement takes it out at full weight; with k newer pieces of evidence the arm then holds
    // w·(γ − γ^(k+1)) less than the store (here w = 1, k = 9: five failures and four ratings).
    const gamma = discountFactor(50);
    const store = new FakeEvidenceSource();
    const online = new AdaptivePolicy(options(models));
    const events: HistoryEvent[] = [];
    for (let i = 0; i < 10; i++) {
      seq += 1;
      const failed = i % 2 === 1;
      const trace: FakeTrace = { id: `r${seq}`, time: seq, queryClass: 'code', model: 'a', outcome: failed ? 'error' : 'success', feedback: failed ? null : 1, costUsd: null, latencyMs: 10 };
      events.push({ kind: 'trace', trace });
    }
    apply(events, store, online);
    const restarted = new AdaptivePolicy(options(models, { source: store }));
    await restarted.updateFromTraces();
    expectSameArms(online, restarted);
    const first = (events[0] as { trace: FakeTrace }).trace.id;
    apply([{ kind: 'feedback', id: first, time: (seq += 1), score: 0, source: 'human' }], store, online, restarted);
    const want = (await storeQuality(store, gamma)).get('code/a')!;
    // Newest first: the new 0, then a failure and a rating in turn.
    expect(want.weight).toBeCloseTo(1 + gamma ** 2 + gamma ** 4 + gamma ** 6 + gamma ** 8, 12);
    expect(want.sum).toBeCloseTo(gamma ** 2 + gamma ** 4 + gamma ** 6 + gamma ** 8, 12);
    // Online, no rating of the arm newer than this one was replaced: exactly the store's sums.
    expect(armSums(online, 'code', 'a').qualityWeight).toBeCloseTo(want.weight, 12);
    expect(armSums(online, 'code', 'a').quality).toBeCloseTo(want.sum, 12);
    expect(armSums(restarted, 'code', 'a').qualityWeight).toBeCloseTo(want.weight - (gamma - gamma ** 10), 12);
    expect(armSums(restarted, 'code', 'a').quality).toBeCloseTo(want.sum - (gamma - gamma ** 10), 12);
    // Five rated answers, one of them rated twice: five both ways.
    expect(armSums(online, 'code', 'a').rated).toBe(5);
    expect(armSums(restarted, 'code', 'a').rated).toBe(5);
    expect(want.rated).toBe(5);
    // The whole record does not forget, so where the rating sat does not matter to it.
    await expectStoreRecord(restarted, store);
    await expectStoreRecord(online, store);
  });

  it('reports the changes of the greedy choice per class', async () => {
    const store = new FakeEvidenceSource();
    // Successes rated 1; the priciest model (b) anchors the price prior.
    const add = (queryClass: string, model: string, n: number, outcome: Outcome) => {
      for (let i = 0; i < n; i++) {
        seq += 1;
        store.add({ id: `u${seq}`, time: seq, queryClass, model, outcome, feedback: outcome === 'success' ? 1 : null, costUsd: null, latencyMs: 10 });
      }
    };
    add('code', 'a', 10, 'success');
    add('math', 'b', 10, 'error');
    add('math', 'c', 10, 'success');
    const policy = new AdaptivePolicy(options(models, { source: store }));
    expect(await policy.updateFromTraces()).toEqual({
      updated: true,
      query_classes: 2,
      total_traces: 30,
      changes: { code: { old: '', new: 'a' }, math: { old: '', new: 'c' } },
    });
    expect(await policy.updateFromTraces()).toEqual({ updated: true, query_classes: 2, total_traces: 30, changes: {} });
    add('code', 'a', 30, 'error');
    add('code', 'd', 40, 'success');
    const third = await policy.updateFromTraces();
    expect(third.changes).toEqual({ code: { old: 'a', new: 'd' } });
  });

  it('neither loses nor double counts what is observed while an update reads the store', async () => {
    const store = new FakeEvidenceSource();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    let readDone: () => void = () => {};
    // The update issues all its reads in one turn; once this one has its rows, every read has.
    const read = new Promise<void>((resolve) => (readDone = resolve));
    const gated: EvidenceSource = {
      evidence: (query) => store.evidence(query),
      qualityEvidence: (query) => store.qualityEvidence(query),
      recentByArm: async (perArm) => {
        const rows = await store.recentByArm(perArm);
        readDone();
        await gate;
        return rows;
      },
    };
    const record = (id: string): FakeTrace => ({ id, time: 0, queryClass: 'code', model: 'a', outcome: 'success', feedback: null, costUsd: null, latencyMs: 10 });
    const observe = (policy: AdaptivePolicy, id: string) =>
      policy.observe({ traceId: id, query: '', queryClass: 'code', model: 'a', outcome: 'success', latencyMs: 10, costUsd: null, feedback: null });

    const policy = new AdaptivePolicy(options(models, { source: gated }));
    for (let i = 0; i < 5; i++) {
      store.add(record(`s${i}`));
      observe(policy, `s${i}`);
    }
    store.add(record('committed-before-read'));
    const update = policy.updateFromTraces();
    await read;
    // Already in what the update read: must not count twice.
    observe(policy, 'committed-before-read');
    // Committed after the read: must survive the swap.
    store.add(record('committed-after-read'));
    observe(policy, 'committed-after-read');
    open();
    await update;
    expect(policy.armState('code', 'a')?.count).toBe(7);
    // Observed again after the update (a caller's duplicate): still not counted twice.
    observe(policy, 'committed-after-read');
    expect(policy.armState('code', 'a')?.count).toBe(7);
  });

  it('leaves the state alone when the store fails, and keeps working', async () => {
    let fail = true;
    const store = new FakeEvidenceSource();
    const flaky: EvidenceSource = {
      evidence: async (query) => {
        if (fail) throw new Error('database is locked');
        return store.evidence(query);
      },
      qualityEvidence: (query) => store.qualityEvidence(query),
      recentByArm: (perArm) => store.recentByArm(perArm),
    };
    const policy = new AdaptivePolicy(options(models, { source: flaky }));
    policy.observe(observation('code', 'a'));
    await expect(policy.updateFromTraces()).rejects.toThrow('database is locked');
    expect(policy.armState('code', 'a')?.count).toBe(1);
    fail = false;
    store.add({ id: 'x', time: 1, queryClass: 'code', model: 'b', outcome: 'success', feedback: null, costUsd: null, latencyMs: 1 });
    expect(await policy.updateFromTraces()).toMatchObject({ updated: true, total_traces: 1 });
    expect(policy.armState('code', 'a')?.count).toBe(0);
    expect(policy.armState('code', 'b')?.count).toBe(1);
  });
});

