import type { Context } from 'hono';
import type { Gateway } from '../gateway.js';
import type { ArmSnapshot, ClassSnapshot } from '../routing/types.js';
import type { ClassModelStats } from '../traces/types.js';

function parseTime(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

function modelStats(s: ClassModelStats | undefined, arm: ArmSnapshot | undefined) {
  return {
    count: s?.count ?? 0,
    success_rate: s ? s.successRate : null,
    mean_feedback: s?.meanFeedback ?? null,
    feedback_count: s?.feedbackCount ?? 0,
    latency_p50_ms: s?.latencyP50Ms ?? null,
    latency_p95_ms: s?.latencyP95Ms ?? null,
    prompt_tokens: s?.promptTokens ?? 0,
    completion_tokens: s?.completionTokens ?? 0,
    cost_usd: s?.costUsd ?? 0,
    estimate: arm?.estimate ?? null,
    uncertainty: arm?.uncertainty ?? null,
    share: arm?.share ?? null,
  };
}

/** Per query class: what the store recorded for each model, beside what the policy believes now. */
export function buildStats(stats: ClassModelStats[], classes: ClassSnapshot[]) {
  const byClass: Record<string, { decision: string | null; confidence: number | null; models: Record<string, ReturnType<typeof modelStats>> }> = {};
  const snapshots = new Map(classes.map((c) => [c.queryClass, c]));
  const names = new Set([...stats.map((s) => s.queryClass), ...snapshots.keys()]);
  for (const name of [...names].sort()) {
    const snap = snapshots.get(name);
    const arms = new Map((snap?.arms ?? []).map((a) => [a.model, a]));
    const rows = new Map(stats.filter((s) => s.queryClass === name).map((s) => [s.model, s]));
    const models: Record<string, ReturnType<typeof modelStats>> = {};
    for (const model of new Set([...rows.keys(), ...arms.keys()])) models[model] = modelStats(rows.get(model), arms.get(model));
    byClass[name] = { decision: snap?.choice ?? null, confidence: snap?.confidence ?? null, models };
  }
  return byClass;
}

/** GET /stats?since=&until= (epoch ms or ISO dates). */
export function getStats(gw: Gateway) {
  return async function handleStats(c: Context) {
    const range = { since: parseTime(c.req.query('since')), until: parseTime(c.req.query('until')) };
    const summary = await gw.store.stats(range);
    const snapshot = gw.policy.snapshot();
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
    const now = Date.now();
    const models: Record<string, { cooldown_seconds: number }> = {};
    for (const key of gw.modelKeys) models[key] = { cooldown_seconds: Math.ceil(gw.health.cooldownLeft(key, now) / 1000) };
    return c.json({
      total_traces: summary.totalTraces,
      models,
      totals,
      policy: snapshot.policy,
      classes: buildStats(summary.byClassModel, snapshot.classes),
    });
  };
}
