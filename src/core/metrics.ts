import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { FastCounter, FastHistogram, type CounterChild, type HistogramChild } from './metric-primitives.js';

/**
 * Prometheus metrics of one gateway, served at GET /metrics.
 *
 * The tracegate_* metrics live in a registry of this gateway's own (not prom-client's global one),
 * so several gateways in one process (the tests) do not collide. The default process metrics
 * (CPU, memory, event loop, GC) describe the process, not a gateway: they are collected once per
 * process into a registry of their own, and each gateway's registry shows them beside its own.
 */

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
const TTFB_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let processRegistry: Registry | null = null;

/** One registry per process for the default metrics (their observers are process-wide). */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** What one finished upstream attempt adds to the metrics. */
export interface AttemptMetrics {
  model: string;
  queryClass: string;
  reason: string;
  outcome: string;
  latencyMs: number;
  ttfbMs: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  costUsd: number | null;
}

/** Per-model label children, made once (the hot path then only adds numbers). */
interface ModelChildren {
  latency: HistogramChild;
  ttfb: HistogramChild;
  promptTokens: CounterChild;
  completionTokens: CounterChild;
  cost: CounterChild;
}

export class GatewayMetrics {
  /** This gateway's registry: its tracegate_* metrics and the process's default metrics. */
  readonly registry: Registry;
  // Counted on every request: the cheap kind (see metric-primitives.ts).
  private readonly requests: FastCounter;
  private readonly latency: FastHistogram;
  private readonly ttfb: FastHistogram;
  private readonly tokens: FastCounter;
  private readonly cost: FastCounter;
  private readonly failovers: Counter<'from' | 'to'>;
  private readonly feedbackCounter: Counter<'model' | 'source'>;
  private readonly policyUpdates: Counter;
  private readonly fleetFeedbacks: Counter;
  private readonly judgeCalls: Counter<'outcome'>;
  private readonly judgeDrops: Counter<'reason'>;
  private readonly judgeCost: Counter;
  private readonly shadowCalls: Counter<'outcome'>;
  private readonly shadowSkips: Counter<'reason'>;
  private readonly shadowCost: Counter;
  private spoolReader: () => number = () => 0;
  // Label sets come from config keys and a few fixed words, so these maps stay small.
  private readonly modelChildren = new Map<string, ModelChildren>();
  private readonly failoverChildren = new Map<string, CounterChild>();
  private readonly feedbackChildren = new Map<string, CounterChild>();

  constructor() {
    const own = new Registry();
    const registers = [own];
    this.requests = new FastCounter(
      'tracegate_requests_total',
      'Upstream attempts (one per trace), by model key, query class, routing reason and outcome.',
      ['model', 'class', 'reason', 'outcome'],
    );
    this.latency = new FastHistogram(
      'tracegate_upstream_latency_seconds',
      'Time from sending an upstream attempt to its last byte (or its failure), every attempt.',
      ['model'],
      LATENCY_BUCKETS,
    );
    this.ttfb = new FastHistogram(
      'tracegate_upstream_ttfb_seconds',
      'Time to first byte of upstream attempts that got one (response headers; for a stream, its first chunk).',
      ['model'],
      TTFB_BUCKETS,
    );
    this.tokens = new FastCounter(
      'tracegate_tokens_total',
      'Tokens reported by upstreams in usage, by model key and kind (prompt or completion).',
      ['model', 'kind'],
    );
    this.cost = new FastCounter('tracegate_cost_usd_total', "Dollars spent, from the usage and the model's configured prices.", ['model']);
    for (const metric of [this.requests, this.latency, this.ttfb, this.tokens, this.cost]) own.registerMetric(metric.asMetric());
    this.failovers = new Counter({
      name: 'tracegate_failovers_total',
      help: 'Routed requests that moved from a failed model to another.',
      labelNames: ['from', 'to'],
      registers,
    });
    this.feedbackCounter = new Counter({
      name: 'tracegate_feedback_total',
      help: 'Feedback stored on traces, by the model key of the trace and who gave it (human: POST /feedback; judge; implicit: a regenerated answer).',
      labelNames: ['model', 'source'],
      registers,
    });
    this.policyUpdates = new Counter({
      name: 'tracegate_policy_updates_total',
      help: 'Recomputations of the routing policy from the trace store (at boot and every router.updateIntervalSeconds).',
      registers,
    });
    this.fleetFeedbacks = new Counter({
      name: 'tracegate_fleet_feedback_total',
      help: 'Feedback that other instances committed to the shared store, heard as it committed.',
      registers,
    });
    const metrics = this;
    // Registered with the registry, which reads it at scrape time through collect().
    new Gauge({
      name: 'tracegate_spool_depth',
      help: 'Traces waiting in the local spool for the database (PostgreSQL) to be reachable again; 0 when all are in the database.',
      registers,
      collect() {
        this.set(metrics.spoolReader());
      },
    });
    this.judgeCalls = new Counter({
      name: 'tracegate_judge_calls_total',
      help: 'Answers the judge was asked to grade, by outcome: scored, unparsed (no score from 0 to 1 in its reply) or failed.',
      labelNames: ['outcome'],
      registers,
    });
    this.judgeDrops = new Counter({
      name: 'tracegate_judge_dropped_total',
      help: 'Sampled answers not graded, by reason: queue_full, rate_limited (router.judge.maxPerMinute) or budget (router.judge.dailyBudgetUsd spent).',
      labelNames: ['reason'],
      registers,
    });
    this.judgeCost = new Counter({ name: 'tracegate_judge_cost_usd_total', help: 'Dollars spent on judge calls.', registers });
    this.shadowCalls = new Counter({
      name: 'tracegate_shadow_calls_total',
      help: 'Shadow calls (a routed request sent in the background to another model), by outcome: success, error or timeout.',
      labelNames: ['outcome'],
      registers,
    });
    this.shadowSkips = new Counter({
      name: 'tracegate_shadow_skipped_total',
      help: 'Sampled requests that got no shadow call, by reason: budget (router.shadow.dailyBudgetUsd spent), no_candidate or busy.',
      labelNames: ['reason'],
      registers,
    });
    this.shadowCost = new Counter({ name: 'tracegate_shadow_cost_usd_total', help: 'Dollars spent on shadow calls.', registers });
    for (const outcome of ['scored', 'unparsed', 'failed']) this.judgeCalls.labels(outcome);
    for (const reason of ['queue_full', 'rate_limited', 'budget']) this.judgeDrops.labels(reason);
    this.registry = Registry.merge([processMetrics(), own]);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  attempt(a: AttemptMetrics): void {
    this.requests.labels(a.model, a.queryClass, a.reason, a.outcome).inc();
    const m = this.forModel(a.model);
    m.latency.observe(a.latencyMs / 1000);
    if (a.ttfbMs !== null) m.ttfb.observe(a.ttfbMs / 1000);
    if (a.promptTokens) m.promptTokens.inc(a.promptTokens);
    if (a.completionTokens) m.completionTokens.inc(a.completionTokens);
    if (a.costUsd) m.cost.inc(a.costUsd);
  }

  failover(from: string, to: string): void {
    const key = `${from}\u0000${to}`;
    let child = this.failoverChildren.get(key);
    if (!child) {
      child = this.failovers.labels(from, to);
      this.failoverChildren.set(key, child);
    }
    child.inc();
  }

  feedback(model: string, source = 'human'): void {
    const key = `${model}\u0000${source}`;
    let child = this.feedbackChildren.get(key);
    if (!child) {
      child = this.feedbackCounter.labels(model, source);
      this.feedbackChildren.set(key, child);
    }
    child.inc();
  }

  policyUpdated(): void {
    this.policyUpdates.inc();
  }

  fleetFeedback(): void {
    this.fleetFeedbacks.inc();
  }

  judgeCall(outcome: 'scored' | 'unparsed' | 'failed'): void {
    this.judgeCalls.labels(outcome).inc();
  }

  judgeDropped(reason: 'queue_full' | 'rate_limited' | 'budget'): void {
    this.judgeDrops.labels(reason).inc();
  }

  judgeSpent(usd: number): void {
    if (usd > 0) this.judgeCost.inc(usd);
  }

  shadowCall(outcome: string): void {
    this.shadowCalls.labels(outcome).inc();
  }

  shadowSkipped(reason: 'budget' | 'no_candidate' | 'busy'): void {
    this.shadowSkips.labels(reason).inc();
  }

  shadowSpent(usd: number): void {
    if (usd > 0) this.shadowCost.inc(usd);
  }

  /** Where `tracegate_spool_depth` is read from at each scrape. */
  trackSpool(read: () => number): void {
    this.spoolReader = read;
  }

  private forModel(model: string): ModelChildren {
    let m = this.modelChildren.get(model);
    if (!m) {
      m = {
        latency: this.latency.labels(model),
        ttfb: this.ttfb.labels(model),
        promptTokens: this.tokens.labels(model, 'prompt'),
        completionTokens: this.tokens.labels(model, 'completion'),
        cost: this.cost.labels(model),
      };
      this.modelChildren.set(model, m);
    }
    return m;
  }
}
