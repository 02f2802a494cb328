import { computeBaselines, type Baselines } from './baselines.js';
import { splitOf, type Dataset, type EvalQuery } from './dataset.js';
import { pricedModels } from './prices.js';
import { FULL_FEEDBACK, replayOnline, replayTrainTest, type DriftKind, type ReplayResult, type SignalOptions } from './replay.js';
import { shuffled } from './shuffle.js';
import { DatasetError } from '../core/errors.js';

export interface EvalSettings {
  policies: readonly string[];
  /** Runs per policy and λ; run s (1..seeds) shuffles with seed s. */
  seeds: number;
  /** Cost weights: utility = quality − λ × dollars per query. */
  lambdas: readonly number[];
  halfLife: number;
  minSamples: number;
  updateEvery: number;
  /** router.priorWeight for the policies (it matters only with offline evidence: warm start). */
  priorWeight: number;
  /** Train/test mode when given; online mode over every query otherwise. */
  split?: { train: string; test: string };
  /** With `split`: load the train split as offline evidence (a prior), not as live traces. */
  warmStart?: boolean;
  /** Who rates the routed answers (default: every answer, by its user). */
  signals?: EvalSignals;
  /** A change halfway through each run (see ReplayOptions.drift). */
  drift?: DriftKind;
}

/** The simulated quality signals (see SignalOptions); the judge model is a model of the data. */
export interface EvalSignals {
  feedbackRate: number;
  judgeRate: number;
  judgeNoise: number;
  shadowRate: number;
  /** The judge's model key (default: the data's priciest model). */
  judgeModel?: string;
}

export type EvalMode = 'online' | 'train-test' | 'warm-start';

export interface EvalOutcome {
  mode: EvalMode;
  settings: EvalSettings;
  models: string[];
  /** Queries routed (and scored) per run. */
  n: number;
  /** Train queries loaded as full-information traces (train-test mode). */
  trainN: number;
  /** policy → λ → one result per seed. */
  runs: Map<string, Map<number, ReplayResult[]>>;
  baselines: Baselines;
}

/** The policy's seed for run s: decorrelated from the shuffle, which uses s itself. */
export function policySeed(seed: number): number {
  return (Math.imul(seed, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
}

/**
 * Replays the data for every policy × λ × seed. All policies and λ of one seed see the same order.
 * `onProgress(done, total)` counts routed queries.
 */
export async function runEval(
  dataset: Dataset,
  settings: EvalSettings,
  onProgress?: (done: number, total: number) => void,
): Promise<EvalOutcome> {
  const train = settings.split ? splitOf(dataset, settings.split.train) : [];
  const routed: EvalQuery[] = settings.split ? splitOf(dataset, settings.split.test) : dataset.queries;
  const models = pricedModels(dataset);
  const signals = settings.signals ?? FULL_FEEDBACK;
  const judgeModel = judgeIndex(dataset, models, settings.signals?.judgeModel);
  const total = settings.policies.length * settings.lambdas.length * settings.seeds * routed.length;
  let done = 0;
  const onQuery = onProgress ? () => onProgress(++done, total) : undefined;

  const runs = new Map<string, Map<number, ReplayResult[]>>();
  for (const policy of settings.policies) {
    const byLambda = new Map<number, ReplayResult[]>();
    for (const lambda of settings.lambdas) byLambda.set(lambda, []);
    runs.set(policy, byLambda);
  }

  for (let seed = 1; seed <= settings.seeds; seed++) {
    const order = shuffled(routed, seed);
    const trainOrder = settings.split ? shuffled(train, seed + 0x10000) : [];
    for (const policy of settings.policies) {
      for (const lambda of settings.lambdas) {
        const options = {
          policy,
          models,
          costWeight: lambda,
          halfLife: settings.halfLife,
          minSamples: settings.minSamples,
          seed: policySeed(seed),
          priorWeight: settings.priorWeight,
          updateEvery: settings.updateEvery,
          onQuery,
          signals: { ...signals, judgeModel, seed: policySeed(seed) ^ 0x51ed } satisfies SignalOptions,
          drift: settings.drift,
        };
        const result = settings.split
          ? await replayTrainTest(trainOrder, order, options, settings.warmStart ? 'offline' : 'live')
          : await replayOnline(order, options);
        runs.get(policy)?.get(lambda)?.push(result);
      }
    }
  }

  return {
    mode: settings.split ? (settings.warmStart ? 'warm-start' : 'train-test') : 'online',
    settings,
    models: dataset.models,
    n: routed.length,
    trainN: train.length,
    runs,
    // λ = 0 always: the report's best_single and oracle are the λ = 0 ones.
    baselines: computeBaselines(dataset.models, routed, [...new Set([0, ...settings.lambdas])]),
  };
}

/** The judge's model: the one named (it must be a model of the data), else the priciest. */
export function judgeIndex(dataset: Dataset, models: readonly { key: string; inputCostPerMTok: number }[], name?: string): number {
  if (name !== undefined) {
    const i = dataset.models.indexOf(name);
    if (i === -1) throw new DatasetError(`--judge-model "${name}" is not a model of the data (models: ${dataset.models.join(', ')})`);
    return i;
  }
  let best = 0;
  models.forEach((m, i) => {
    if (m.inputCostPerMTok > (models[best] as { inputCostPerMTok: number }).inputCostPerMTok) best = i;
  });
  return best;
}
