import type { ArmSnapshot, ClassSnapshot, PolicySnapshot } from '../routing/types.js';
import type { ClassModelStats, FeedbackSource, FeedbackSourceCount, InstanceStats, StatsSummary } from '../traces/types.js';

/**
 * The JSON of GET /stats, built from plain data (the store's stats, the policy's snapshot, the
 * models' cooldowns), so the HTTP handler and `tracegate stats` print the same thing.
 */

/** Epoch milliseconds or an ISO date; undefined when empty or not a time. */
export function parseTime(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** Traces with feedback, by who gave it (feedback stored without a source counts as `human`). */
export type FeedbackBySourceJson = Record<FeedbackSource, number>;

function noFeedback(): FeedbackBySourceJson {
  return { human: 0, judge: 0, implicit: 0, offline: 0 };
}

/** The counts summed per source, over all of `rows`. */
function bySource(rows: readonly FeedbackSourceCount[]): FeedbackBySourceJson {
  const out = noFeedback();
  for (const r of rows) out[r.source] += r.count;
  return out;
}

function modelStats(s: ClassModelStats | undefined, arm: ArmSnapshot | undefined, feedback: readonly FeedbackSourceCount[]) {
  return {
    count: s?.count ?? 0,
    success_rate: s ? s.successRate : null,
    mean_feedback: s?.meanFeedback ?? null,
    feedback_count: s?.feedbackCount ?? 0,
    feedback_by_source: bySource(feedback),
    latency_p50_ms: s?.latencyP50Ms ?? null,
    latency_p95_ms: s?.latencyP95Ms ?? null,
    prompt_tokens: s?.promptTokens ?? 0,
    completion_tokens: s?.completionTokens ?? 0,
    cost_usd: s?.costUsd ?? 0,
    estimate: arm?.estimate ?? null,
    uncertainty: arm?.uncertainty ?? null,
    /** The quality evidence behind `estimate` (see ArmSnapshot.rated); null for a policy that does not count it apart. */
    rated: arm?.rated ?? null,
    share: arm?.share ?? null,
  };
}

export type ModelStatsJson = ReturnType<typeof modelStats>;

export interface ClassStatsJson {
  decision: string | null;
  confidence: number | null;
  models: Record<string, ModelStatsJson>;
}

/** Per query class: what the store recorded for each model, beside what the policy believes now. */
export function buildStats(
  stats: ClassModelStats[],
  classes: ClassSnapshot[],
  feedback: readonly FeedbackSourceCount[] = [],
): Record<string, ClassStatsJson> {
  const byClass: Record<string, ClassStatsJson> = {};
  const snapshots = new Map(classes.map((c) => [c.queryClass, c]));
  const names = new Set([...stats.map((s) => s.queryClass), ...snapshots.keys()]);
  for (const name of [...names].sort()) {
    const snap = snapshots.get(name);
    const arms = new Map((snap?.arms ?? []).map((a) => [a.model, a]));
    const rows = new Map(stats.filter((s) => s.queryClass === name).map((s) => [s.model, s]));
    const models: Record<string, ModelStatsJson> = {};
    const rated = feedback.filter((f) => f.queryClass === name);
    for (const model of new Set([...rows.keys(), ...arms.keys()])) {
      models[model] = modelStats(rows.get(model), arms.get(model), rated.filter((f) => f.model === model));
    }
    byClass[name] = { decision: snap?.choice ?? null, confidence: snap?.confidence ?? null, models };
  }
  return byClass;
}

export interface InstanceStatsJson {
  count: number;
  /** Of all traces in the range. */
  share: number;
  success_rate: number;
  feedback_count: number;
  cost_usd: number;
  last_time: number;
}

/** Per gateway instance (its `instanceId`; `(none)` for traces recorded without one): who served what. */
export function buildInstances(rows: InstanceStats[] | undefined, total: number): Record<string, InstanceStatsJson> {
  const out: Record<string, InstanceStatsJson> = {};
  for (const r of rows ?? []) {
    out[r.instanceId ?? '(none)'] = {
      count: r.count,
      share: total > 0 ? r.count / total : 0,
      success_rate: r.count > 0 ? r.successes / r.count : 0,
      feedback_count: r.feedbackCount,
      cost_usd: r.costUsd,
      last_time: r.lastTime,
    };
  }
  return out;
}

export interface StatsJson {
  total_traces: number;
  /** Per gateway instance: with a shared store (PostgreSQL), every instance of the fleet. */
  instances: Record<string, InstanceStatsJson>;
  /**
   * Per configured model: seconds of cooldown left (0 when routable), and the smallest request
   * (bytes) it refused as too big while this instance remembers it (GET /stats only).
   */
  models: Record<string, { cooldown_seconds: number; size_limit_bytes?: number }>;
  totals: { successes: number; cost_usd: number; prompt_tokens: number; completion_tokens: number; feedback_count: number };
  /** Traces with feedback in the range, by who gave it: `human` (POST /feedback), `judge`, `implicit` (a regenerated answer), `offline` (imported evaluation results). */
  feedback_by_source: FeedbackBySourceJson;
  policy: string;
  classes: Record<string, ClassStatsJson>;
  /** Per-query policies (contextual): per model, the features that weigh most in its predicted reward. */
  features?: Record<string, { feature: string; weight: number }[]>;
}

/** The whole GET /stats body. `cooldownSeconds` is per configured model key (0 when routable). */
export function statsJson(summary: StatsSummary, snapshot: PolicySnapshot, cooldownSeconds: Record<string, number>): StatsJson {
  const totals = summary.byClassModel.reduce(
    (t, s) => ({
      successes: t.successes + s.successes,
      cost_usd: t.cost_usd + s.costUsd,
      prompt_tokens: t.prompt_tokens + s.promptTokens,
      completion_tokens: t.completion_tokens + s.completionTokens,
      feedback_count: t.feedback_count + s.feedbackCount,
    }),
    { successes: 0, cost_usd: 0, prompt_tokens: 0, completion_tokens: 0, feedback_count: 0 },
  );
  const models: Record<string, { cooldown_seconds: number }> = {};
  for (const [key, seconds] of Object.entries(cooldownSeconds)) models[key] = { cooldown_seconds: seconds };
  return {
    total_traces: summary.totalTraces,
    instances: buildInstances(summary.byInstance, summary.totalTraces),
    models,
    totals,
    feedback_by_source: bySource(summary.feedbackBySource),
    policy: snapshot.policy,
    classes: buildStats(summary.byClassModel, snapshot.classes, summary.feedbackBySource),
    ...(snapshot.features !== undefined ? { features: snapshot.features } : {}),
  };
}
