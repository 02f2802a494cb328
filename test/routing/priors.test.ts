import { describe, expect, it } from 'vitest';
import { AdaptivePolicy } from '../../src/routing/adaptive.js';
import { discountFactor } from '../../src/routing/prior.js';
import { TraceDrivenPolicy } from '../../src/routing/learned.js';
import type { ModelInfo, PolicyOptions } from '../../src/routing/types.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { makeTrace } from '../helpers/trace.js';
import { FakeEvidenceSource, reliabilityOf, type FakeTrace } from './fake-evidence.js';

const free = (key: string): ModelInfo => ({ key, inputCostPerMTok: 0, outputCostPerMTok: 0 });

function options(over: Partial<PolicyOptions> = {}): PolicyOptions {
  return { models: [free('a'), free('b')], minSamples: 5, costWeight: 0, latencyWeight: 0, halfLife: 50, seed: 1, ...over };
}

let n = 0;
function trace(model: string, feedback: number, source: 'live' | 'offline', queryClass = 'code'): FakeTrace {
  n++;
  return { id: `p${n}`, time: n, queryClass, model, outcome: 'success', feedback, costUsd: 0.01, latencyMs: 100, source };
}

describe('offline evidence as a prior', () => {
  it('adaptive: counts at most priorWeight observations per class × model', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 400; i++) source.add(trace('a', i % 4 === 0 ? 0 : 1, 'offline'));
    for (let i = 0; i < 6; i++) source.add(trace('b', 1, 'offline'));
    const policy = new AdaptivePolicy(options({ priorWeight: 20, source }));
    expect(await policy.updateFromTraces()).toMatchObject({ updated: true, total_traces: 406 });
    const a = policy.armState('code', 'a')!;
    // Scaled to 20 pseudo-observations, at the offline mean quality (0.75); no live trace counted.
    expect(a.count).toBe(0);
    expect(a.weight).toBeCloseTo(20, 9);
    expect(a.quality).toBeCloseTo(15, 9);
    expect(a.costSum / a.costCount).toBeCloseTo(0.01, 12);
    // Fewer than priorWeight offline traces count as they are.
    expect(policy.armState('code', 'b')!.weight).toBeCloseTo(6, 9);
    // Classes known only offline are in the snapshot.
    expect(policy.snapshot().classes.map((c) => c.queryClass)).toEqual(['code']);
  });

  it('adaptive: the prior is older than every live trace, so live traffic overrides it as it accumulates', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 100; i++) source.add(trace('a', 1, 'offline'));
    for (let i = 0; i < 30; i++) source.add(trace('a', 0, 'live'));
    const policy = new AdaptivePolicy(options({ priorWeight: 50, source }));
    await policy.updateFromTraces();
    const g = discountFactor(50);
    const a = policy.armState('code', 'a')!;
    const liveWeight = (1 - Math.pow(g, 30)) / (1 - g);
    expect(a.count).toBe(30);
    expect(a.weight).toBeCloseTo(liveWeight + 50 * Math.pow(g, 30), 9);
    expect(a.quality).toBeCloseTo(50 * Math.pow(g, 30), 9);
    // And online, each new live trace discounts the prior with the rest of the arm.
    policy.observe({ traceId: 'new', query: '', queryClass: 'code', model: 'a', outcome: 'success', latencyMs: 1, costUsd: null, feedback: 0 });
    expect(policy.armState('code', 'a')!.quality).toBeCloseTo(50 * Math.pow(g, 31), 9);
  });

  it('adaptive: offline evidence lends reliability as it lends quality: scaled to priorWeight, older than every live trace', async () => {
    const source = new FakeEvidenceSource();
    // 100 offline traces, one in four failed; then 10 live successes.
    for (let i = 0; i < 100; i++) source.add({ ...trace('a', 1, 'offline'), outcome: i % 4 === 0 ? 'error' : 'success' });
    for (let i = 0; i < 10; i++) source.add(trace('a', 1, 'live'));
    const policy = new AdaptivePolicy(options({ priorWeight: 20, source }));
    await policy.updateFromTraces();
    const g = discountFactor(50);
    const live = (1 - Math.pow(g, 10)) / (1 - g);
    const f = (20 / 100) * Math.pow(g, 10);
    expect(reliabilityOf(policy, 'code', 'a')).toMatchObject({ weight: expect.closeTo(live + f * 100, 9), successes: expect.closeTo(live + f * 75, 9) });
    // The live successes come after it, so the offline failures weigh less with each of them.
    policy.observe({ traceId: 'next', query: '', queryClass: 'code', model: 'a', outcome: 'success', latencyMs: 1, costUsd: null, feedback: null });
    expect(reliabilityOf(policy, 'code', 'a')).toMatchObject({ weight: expect.closeTo((live + f * 100) * g + 1, 9), successes: expect.closeTo((live + f * 75) * g + 1, 9) });
  });

  it('adaptive: priorWeight 0 ignores offline evidence', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 10; i++) source.add(trace('a', 1, 'offline'));
    const policy = new AdaptivePolicy(options({ priorWeight: 0, source }));
    await policy.updateFromTraces();
    expect(policy.armState('code', 'a')?.weight ?? 0).toBe(0);
  });

  it('learned: maps a class from offline evidence, scaled to priorWeight beside the live traces', async () => {
    const source = new FakeEvidenceSource();
    for (let i = 0; i < 200; i++) source.add(trace('b', 1, 'offline'), trace('a', 0.2, 'offline'));
    const policy = new TraceDrivenPolicy(options({ priorWeight: 10, source }));
    expect(await policy.updateFromTraces()).toMatchObject({ updated: true, changes: { code: { old: '', new: 'b' } } });
    expect(policy.policyMap).toEqual({ code: 'b' });
    // Each model's 200 offline traces count as 10.
    expect(policy.confidence).toEqual({ code: 20 });
    // Live traces add to it: a's 30 live traces at 0.9 lift its blended mean feedback to
    // (10·0.2 + 30·0.9)/40 = 0.725, still under b's 1.0.
    for (let i = 0; i < 30; i++) source.add(trace('a', 0.9, 'live'));
    await policy.updateFromTraces();
    expect(policy.confidence).toEqual({ code: 50 });
    expect(policy.policyMap).toEqual({ code: 'b' });
    expect(policy.snapshot().classes[0]!.arms.find((arm) => arm.model === 'a')!.estimate).toBeCloseTo(0.6 + 0.4 * 0.725, 9);
  });

  it('the SQLite store keeps offline traces out of purge --before, and purgeOffline removes them', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    await store.importTraces([
      makeTrace({ time: 1000, modelKey: 'a', source: 'offline', feedback: 1 }),
      makeTrace({ time: 1001, modelKey: 'a', source: 'live' }),
      makeTrace({ time: 5000, modelKey: 'b', source: 'live' }),
    ]);
    expect(await store.purge(2000)).toEqual({ deleted: 1 });
    expect((await store.evidence({ source: 'offline' })).map((e) => [e.model, e.count])).toEqual([['a', 1]]);
    // What purge folded away counts as live.
    expect((await store.evidence({ source: 'live' })).map((e) => [e.model, e.count]).sort()).toEqual([['a', 1], ['b', 1]]);
    expect((await store.recentByArm(10)).map((r) => r.model)).toEqual(['b']);
    expect(await store.purgeOffline()).toEqual({ deleted: 1 });
    expect(await store.evidence({ source: 'offline' })).toEqual([]);
    expect(await store.count()).toBe(1);
    await store.close();
  });
});
