import { describe, expect, it } from 'vitest';
import { parseDataset } from '../../src/eval/dataset.js';
import { runEval, type EvalSettings } from '../../src/eval/evaluate.js';
import { pricedModels } from '../../src/eval/prices.js';
import { buildReport } from '../../src/eval/report.js';
import { priorCostUsd } from '../../src/routing/prior.js';
import { registerPolicy } from '../../src/routing/registry.js';
import type { Observation, PolicyOptions, RouterPolicy } from '../../src/routing/types.js';
import { syntheticRows, toJsonl } from './synthetic.js';

const data = parseDataset(toJsonl(syntheticRows(200)));

function settings(over: Partial<EvalSettings>): EvalSettings {
  return { policies: ['adaptive'], seeds: 3, lambdas: [0], halfLife: 50, minSamples: 5, updateEvery: 100, priorWeight: 50, ...over };
}

/** A policy that records how the replay drives it (and what the store holds at each update). */
const spies: SpyPolicy[] = [];
class SpyPolicy implements RouterPolicy {
  readonly name = 'eval-spy';
  readonly observations: Observation[] = [];
  /** Traces in the store, and observations seen, at each updateFromTraces. */
  readonly updates: { traces: number; feedbackSum: number; observed: number }[] = [];
  private picks = 0;
  constructor(readonly options: PolicyOptions) {
    spies.push(this);
  }
  select(ctx: { available: readonly string[] }) {
    return { model: ctx.available[this.picks++ % ctx.available.length] as string, reason: 'learned' as const };
  }
  observe(observation: Observation): void {
    this.observations.push(observation);
  }
  observeFeedback(): void {}
  async updateFromTraces() {
    const rows = (await this.options.source?.evidence()) ?? [];
    this.updates.push({
      traces: rows.reduce((s, r) => s + r.count, 0),
      feedbackSum: rows.reduce((s, r) => s + r.feedbackSum, 0),
      observed: this.observations.length,
    });
    return { updated: true };
  }
  snapshot() {
    return { policy: this.name, classes: [] };
  }
}
registerPolicy('eval-spy', (options) => new SpyPolicy(options));

describe('replay', () => {
  it('prices each model so that the adaptive prior is its mean cost per query', () => {
    const models = pricedModels(data);
    expect(models.map((m) => m.key)).toEqual(['alpha', 'beta', 'gamma']);
    expect(priorCostUsd(models[0]!)).toBeCloseTo(0.004, 15);
    expect(priorCostUsd(models[2]!)).toBeCloseTo(0.001, 15);
  });

  it('online: bandit feedback as traces (committed before each update) and observations', async () => {
    spies.length = 0;
    await runEval(data, settings({ policies: ['eval-spy'], seeds: 1, lambdas: [50], updateEvery: 100 }));
    const spy = spies[0]!;
    expect(spy.options.costWeight).toBe(50);
    expect(spy.options.minSamples).toBe(5);
    expect(spy.options.halfLife).toBe(50);
    expect(spy.observations).toHaveLength(400);
    // Boot update over the empty store, then one after every 100 queries.
    expect(spy.updates.map((u) => [u.traces, u.observed])).toEqual([
      [0, 0],
      [100, 100],
      [200, 200],
      [300, 300],
      [400, 400],
    ]);
    const first = spy.observations[0]!;
    const query = data.queries.find((q) => q.prompt === first.query)!;
    const i = data.models.indexOf(first.model);
    expect(first).toMatchObject({ outcome: 'success', latencyMs: 0, queryClass: query.queryClass });
    expect(first.feedback).toBe(query.scores[i]);
    expect(first.costUsd).toBe(query.costs[i]);
    // The store's feedback sums are the observed scores.
    const observedSum = spy.observations.reduce((s, o) => s + (o.feedback ?? 0), 0);
    expect(spy.updates[4]!.feedbackSum).toBeCloseTo(observedSum, 9);
  });

  it('train-test: every model\'s train traces are in the store before the first update', async () => {
    spies.length = 0;
    await runEval(data, settings({ policies: ['eval-spy'], seeds: 1, split: { train: 'train', test: 'test' } }));
    const spy = spies[0]!;
    expect(spy.observations).toHaveLength(200);
    expect(spy.updates.map((u) => [u.traces, u.observed])).toEqual([
      [600, 0],
      [700, 100],
      [800, 200],
    ]);
  });

  it('is reproducible: the same seeds give the same figures', async () => {
    const a = buildReport(await runEval(data, settings({ seeds: 2 })), 'syn');
    const b = buildReport(await runEval(data, settings({ seeds: 2 })), 'syn');
    expect(a.policies).toEqual(b.policies);
    // The worst seed is reported beside the mean.
    const point = a.policies.adaptive!['0']!;
    expect(point.utility_min).toBeLessThanOrEqual(point.utility);
    expect(point.utility_min).toBeGreaterThanOrEqual(point.utility - 2 * point.utility_sd);
  });

  it('online: adaptive beats random and the best single model, and nears the per-class best', async () => {
    const report = buildReport(await runEval(data, settings({ lambdas: [0, 200] })), 'syn');
    const at0 = report.policies.adaptive!['0']!;
    const at200 = report.policies.adaptive!['200']!;
    // λ 0: random .558, best single (alpha) .75, per class best (alpha on code, beta on long) .95.
    expect(at0.utility).toBeGreaterThan(0.75 + 0.1);
    expect(at0.utility).toBeGreaterThan(0.9 * 0.95);
    expect(at0.share.alpha! + at0.share.beta!).toBeGreaterThan(0.9);
    // λ 200: random .558 − 200·.9333/400 = .092, best single (beta) .175, per class best
    // (gamma on code: .5 − .2; beta on long: .9 − .4) .4.
    expect(at200.utility).toBeGreaterThan(0.175 + 0.1);
    expect(at200.utility).toBeGreaterThan(0.75 * 0.4);
    expect(report.policy_auc.adaptive).toBeGreaterThan(0);
  });

  it('train-test: learned uses the train traces and picks the per-class best on test', async () => {
    const split = { train: 'train', test: 'test' };
    const report = buildReport(await runEval(data, settings({ policies: ['learned', 'adaptive'], split })), 'syn');
    expect(report.mode).toBe('train-test');
    expect(report.n).toBe(200);
    const learned = report.policies.learned!['0']!;
    // alpha on every code prompt (score 1), beta on every long one (.9): (100 + 90)/200.
    expect(learned.share).toEqual({ alpha: 0.5, beta: 0.5 });
    expect(learned.quality).toBeCloseTo(0.95, 12);
    expect(learned.cost).toBeCloseTo(100 * 0.004 + 100 * 0.002, 12);
    // Without train traces it keeps the first model it tried (the faithful port does not explore).
    const online = buildReport(await runEval(data, settings({ policies: ['learned'] })), 'syn');
    expect(online.policies.learned!['0']!.share).toEqual({ alpha: 1 });
    // The warm adaptive policy also lands near the per-class best.
    expect(report.policies.adaptive!['0']!.utility).toBeGreaterThan(0.9 * 0.95);
  });
});
