import { utility, type QualityCost } from './baselines.js';
import type { EvalMode, EvalOutcome } from './evaluate.js';
import type { ReplayResult } from './replay.js';
import { hullArea, type CostQuality } from './hull.js';

/** One policy at one λ, averaged over seeds. */
export interface PolicyPoint {
  /** Mean score per routed query. */
  quality: number;
  /** Dollars over the routed queries. */
  cost: number;
  /** quality − λ × cost / n. */
  utility: number;
  /** Share of the routed queries per model (models never chosen are left out). */
  share: Record<string, number>;
  /** Sample standard deviation of the utility over seeds (0 with one seed). */
  utility_sd: number;
  /** The worst seed's utility. */
  utility_min: number;
  /** utility / the best single model's utility at this λ (null when that is not positive). */
  vs_best_single: number | null;
  /** Dollars of the judge's calls and of the shadow calls' answers (mean over seeds; not in `cost`). */
  judge_cost: number;
  shadow_cost: number;
  /** Judge calls and shadow calls (mean over seeds), and the share of answers a user rated. */
  judge_calls: number;
  shadow_calls: number;
  rated_share: number;
  /**
   * With --drift: the changed model's share of the requests after the change, per window of requests
   * (`0-25`: the first 25 after it, …), mean over seeds; absent without a drift.
   */
  drift_share?: Record<string, number>;
}

/** The windows of requests after a drift whose share of the changed model the report gives. */
const DRIFT_WINDOWS: readonly (readonly [number, number])[] = [[0, 25], [25, 50], [50, 100], [100, 200], [200, Infinity]];

/** Per window, the share of requests that went to the changed model, mean over the seeds that reached it. */
function driftShare(results: readonly ReplayResult[]): Record<string, number> | undefined {
  if (results.every((r) => r.driftModel === null)) return undefined;
  const out: Record<string, number> = {};
  for (const [from, to] of DRIFT_WINDOWS) {
    const shares = results
      .map((r) => r.driftPicks.slice(from, Math.min(to, r.driftPicks.length)))
      .filter((w) => w.length > 0)
      .map((w) => w.reduce((a, b) => a + b, 0) / w.length);
    if (shares.length > 0) out[`${from}-${to === Infinity ? 'end' : to}`] = mean(shares);
  }
  return out;
}

export interface ModelPoint extends QualityCost {
  model: string;
}

export interface LambdaPoint extends QualityCost {
  utility: number;
}

export interface EvalReport {
  mode: EvalMode;
  n: number;
  seeds: number;
  lambdas: number[];
  policies: Record<string, Record<string, PolicyPoint>>;
  baselines: {
    best_single: ModelPoint;
    oracle: QualityCost;
    random: QualityCost;
    cheapest: ModelPoint;
    models: Record<string, QualityCost>;
    best_single_by_lambda: Record<string, ModelPoint & { utility: number }>;
    oracle_by_lambda: Record<string, LambdaPoint>;
  };
  zero_router_auc: number;
  policy_auc: Record<string, number>;
  data: string;
  train_n: number;
  options: {
    half_life: number;
    min_samples: number;
    update_every: number;
    prior_weight: number;
    /** The simulated quality signals (see `tracegate eval --help`). */
    feedback_rate: number;
    judge_rate: number;
    judge_noise: number;
    shadow_rate: number;
    drift?: 'break' | 'degrade';
    split_train?: string;
    split_test?: string;
  };
  notes: string[];
}

function mean(values: readonly number[]): number {
  return values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}

function sampleSd(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) * (v - m), 0) / (values.length - 1));
}

/** The JSON report: every policy figure is a mean over seeds; baselines are exact on the same queries. */
export function buildReport(outcome: EvalOutcome, data: string, notes: readonly string[] = []): EvalReport {
  const { baselines, n, settings, models } = outcome;
  const lambdas = [...settings.lambdas];
  const bestAt = (lambda: number) => baselines.bestSingle.get(lambda) as ModelPoint;

  const policies: EvalReport['policies'] = {};
  const policyAuc: Record<string, number> = {};
  const singles = Object.values(baselines.models);
  const range = { min: Math.min(...singles.map((p) => p.cost)), max: Math.max(...singles.map((p) => p.cost)) };

  for (const [policy, byLambda] of outcome.runs) {
    const perLambda: Record<string, PolicyPoint> = {};
    const points: CostQuality[] = [];
    for (const lambda of lambdas) {
      const results = byLambda.get(lambda) ?? [];
      const qualities = results.map((r) => (r.n > 0 ? r.qualitySum / r.n : 0));
      const costs = results.map((r) => r.costSum);
      const utilities = results.map((r, i) => (qualities[i] as number) - (lambda * r.costSum) / Math.max(1, r.n));
      const share: Record<string, number> = {};
      models.forEach((model, i) => {
        const s = mean(results.map((r) => (r.n > 0 ? (r.picks[i] as number) / r.n : 0)));
        if (s > 0) share[model] = s;
      });
      const point = { quality: mean(qualities), cost: mean(costs) };
      const u = mean(utilities);
      const best = utility(bestAt(lambda), lambda, n);
      perLambda[String(lambda)] = {
        quality: point.quality,
        cost: point.cost,
        utility: u,
        share,
        utility_sd: sampleSd(utilities),
        utility_min: utilities.length > 0 ? Math.min(...utilities) : 0,
        vs_best_single: best > 0 ? u / best : null,
        judge_cost: mean(results.map((r) => r.judgeCostSum)),
        shadow_cost: mean(results.map((r) => r.shadowCostSum)),
        judge_calls: mean(results.map((r) => r.judgeCalls)),
        shadow_calls: mean(results.map((r) => r.shadowCalls)),
        rated_share: mean(results.map((r) => (r.n > 0 ? r.rated / r.n : 0))),
      };
      const drift = driftShare(results);
      if (drift !== undefined) perLambda[String(lambda)]!.drift_share = drift;
      points.push(point);
    }
    policies[policy] = perLambda;
    policyAuc[policy] = hullArea(points, range);
  }

  const bestByLambda: EvalReport['baselines']['best_single_by_lambda'] = {};
  const oracleByLambda: EvalReport['baselines']['oracle_by_lambda'] = {};
  for (const lambda of lambdas) {
    const best = bestAt(lambda);
    bestByLambda[String(lambda)] = { ...best, utility: utility(best, lambda, n) };
    const oracle = baselines.oracle.get(lambda) as QualityCost;
    oracleByLambda[String(lambda)] = { ...oracle, utility: utility(oracle, lambda, n) };
  }

  const best0 = bestAt(0);
  const oracle0 = baselines.oracle.get(0) as QualityCost;
  return {
    mode: outcome.mode,
    n,
    seeds: settings.seeds,
    lambdas,
    policies,
    baselines: {
      best_single: { model: best0.model, quality: best0.quality, cost: best0.cost },
      oracle: { quality: oracle0.quality, cost: oracle0.cost },
      random: baselines.random,
      cheapest: baselines.cheapest,
      models: baselines.models,
      best_single_by_lambda: bestByLambda,
      oracle_by_lambda: oracleByLambda,
    },
    zero_router_auc: hullArea(singles, range),
    policy_auc: policyAuc,
    data,
    train_n: outcome.trainN,
    options: {
      half_life: settings.halfLife,
      min_samples: settings.minSamples,
      update_every: settings.updateEvery,
      prior_weight: settings.priorWeight,
      feedback_rate: settings.signals?.feedbackRate ?? 1,
      judge_rate: settings.signals?.judgeRate ?? 0,
      judge_noise: settings.signals?.judgeNoise ?? 0,
      shadow_rate: settings.signals?.shadowRate ?? 0,
      ...(settings.drift !== undefined ? { drift: settings.drift } : {}),
      ...(settings.split ? { split_train: settings.split.train, split_test: settings.split.test } : {}),
    },
    notes: [...notes],
  };
}

function table(rows: readonly (readonly string[])[], rightFrom = 1): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i >= rightFrom ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `  ${line}`)
    .join('\n');
}

const f3 = (x: number): string => x.toFixed(3);
const f4 = (x: number): string => x.toFixed(4);
const dollars = (x: number): string => x.toFixed(2);
const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;

/** The human-readable report. */
export function formatReport(report: EvalReport): string {
  const out: string[] = [];
  const { n, lambdas, options } = report;
  const modelCount = Object.keys(report.baselines.models).length;
  const what =
    report.mode === 'online'
      ? `online replay of ${n} queries (bandit feedback, cold start)`
      : report.mode === 'warm-start'
        ? `warm start: ${report.train_n} "${options.split_train}" queries as offline evidence (prior weight ${options.prior_weight}), then ${n} "${options.split_test}" queries routed online`
        : `train-test replay: ${report.train_n} "${options.split_train}" queries as full-information traces, then ${n} "${options.split_test}" queries routed`;
  out.push(`tracegate eval: ${what}`);
  out.push(
    `data ${report.data} · ${modelCount} models · ${report.seeds} seed${report.seeds === 1 ? '' : 's'} · halfLife ${options.half_life} · minSamples ${options.min_samples} · update every ${options.update_every || 'never'}`,
  );
  out.push('utility = quality − λ × dollars per query; policy figures are means over seeds (± sd of utility; the worst seed beside)');
  const signalled = options.feedback_rate !== 1 || options.judge_rate > 0 || options.shadow_rate > 0;
  if (signalled) {
    out.push(
      `signals: users rate ${pct(options.feedback_rate)} of answers; a judge scores ${pct(options.judge_rate)} of the others (wrong ${pct(options.judge_noise)} of the time); shadow calls on ${pct(options.shadow_rate)} of requests`,
    );
  }
  for (const note of report.notes) out.push(`note: ${note}`);

  for (const lambda of lambdas) {
    const key = String(lambda);
    const best = report.baselines.best_single_by_lambda[key];
    const oracle = report.baselines.oracle_by_lambda[key];
    if (best === undefined || oracle === undefined) continue;
    const rel = (u: number): string => (best.utility > 0 ? f3(u / best.utility) : '-');
    const rows: string[][] = [['', 'quality', 'cost $', 'utility', '± sd', 'vs best single', 'worst seed']];
    for (const [policy, byLambda] of Object.entries(report.policies)) {
      const p = byLambda[key];
      if (p === undefined) continue;
      rows.push([policy, f3(p.quality), dollars(p.cost), f4(p.utility), f4(p.utility_sd), rel(p.utility), rel(p.utility_min)]);
    }
    const base = (label: string, p: { quality: number; cost: number }): string[] => {
      const u = utility(p, lambda, n);
      return [label, f3(p.quality), dollars(p.cost), f4(u), '', rel(u)];
    };
    rows.push(base(`best single: ${best.model}`, best));
    rows.push(base('per-query oracle', oracle));
    rows.push(base('random (expected)', report.baselines.random));
    rows.push(base(`cheapest: ${report.baselines.cheapest.model}`, report.baselines.cheapest));
    out.push('', `λ = ${lambda}`, table(rows));
  }

  if (signalled) {
    out.push('', 'Quality signals (mean per run; their dollars are not in the served answers\' cost)');
    const signalRows: string[][] = [['', 'rated by users', 'judge calls', 'judge $', 'shadow calls', 'shadow $']];
    for (const [policy, byLambda] of Object.entries(report.policies)) {
      for (const lambda of lambdas) {
        const p = byLambda[String(lambda)];
        if (p === undefined) continue;
        signalRows.push([`${policy} λ=${lambda}`, pct(p.rated_share), p.judge_calls.toFixed(0), dollars(p.judge_cost), p.shadow_calls.toFixed(0), dollars(p.shadow_cost)]);
      }
    }
    out.push(table(signalRows));
  }

  const drifted = Object.values(report.policies).some((byLambda) => Object.values(byLambda).some((p) => p.drift_share !== undefined));
  if (drifted) {
    out.push('', `Drift: halfway through, the most chosen model ${options.drift === 'break' ? 'fails every request' : 'answers every request wrong'}; its share of the requests after that`);
    const windows = DRIFT_WINDOWS.map(([from, to]) => `${from}-${to === Infinity ? 'end' : to}`);
    const driftRows: string[][] = [['', ...windows.map((w) => `requests ${w}`)]];
    for (const [policy, byLambda] of Object.entries(report.policies)) {
      for (const lambda of lambdas) {
        const share = byLambda[String(lambda)]?.drift_share;
        if (share !== undefined) driftRows.push([`${policy} λ=${lambda}`, ...windows.map((w) => (share[w] !== undefined ? pct(share[w]) : '-'))]);
      }
    }
    out.push(table(driftRows));
  }

  out.push('', 'Share of queries per model (mean over seeds; under 1% left out)');
  const shareRows: string[][] = [];
  for (const [policy, byLambda] of Object.entries(report.policies)) {
    for (const lambda of lambdas) {
      const p = byLambda[String(lambda)];
      if (p === undefined) continue;
      const parts = Object.entries(p.share)
        .filter(([, s]) => s >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([model, s]) => `${model} ${pct(s)}`);
      shareRows.push([`${policy} λ=${lambda}`, parts.join(', ')]);
    }
  }
  out.push(table(shareRows, 2));

  out.push('', 'Single models');
  const singleRows: string[][] = [['', 'quality', 'cost $']];
  const singles = Object.entries(report.baselines.models).sort((a, b) => b[1].quality - a[1].quality);
  for (const [model, p] of singles) singleRows.push([model, f3(p.quality), dollars(p.cost)]);
  out.push(table(singleRows));

  out.push('', 'AIQ (area under the non-decreasing cost–quality hull; cost normalized over the single models\' range)');
  const aucRows: string[][] = [['zero router (single models)', f3(report.zero_router_auc)]];
  for (const [policy, auc] of Object.entries(report.policy_auc)) {
    aucRows.push([`${policy} (λ = ${lambdas.join(', ')})`, f3(auc)]);
  }
  out.push(table(aucRows));
  return `${out.join('\n')}\n`;
}
