import { createPolicy } from '../routing/registry.js';
import type { ModelInfo, QueryContext, RouterPolicy } from '../routing/types.js';
import { SqliteTraceStore } from '../traces/sqlite-store.js';
import { newTrace } from '../traces/trace-columns.js';
import type { FeedbackSource, Outcome, TraceSource } from '../traces/types.js';
import type { EvalQuery } from './dataset.js';
import { mulberry32 } from './shuffle.js';

/**
 * One replay run: a fresh policy over a fresh in-memory trace store, fed as the gateway feeds it
 * (src/pipeline/record-attempt.ts): build the trace, hand it to store.insert, then policy.observe at once.
 * Inserts are awaited in batches (before every periodic update and at the end), not per query.
 */

export interface ReplayOptions {
  policy: string;
  models: readonly ModelInfo[];
  costWeight: number;
  halfLife: number;
  minSamples: number;
  seed: number;
  /** router.priorWeight: offline evidence counts as at most this many observations per class × model. */
  priorWeight: number;
  /** Call policy.updateFromTraces() after every this many routed queries (0 = never). */
  updateEvery: number;
  /** Called after each routed query. */
  onQuery?: () => void;
  /** How the answers' quality becomes known (default: every routed answer rated by its user). */
  signals?: SignalOptions;
  /**
   * A change halfway through: the model chosen most in the first half starts failing every request
   * (`break`) or answering every request wrong (`degrade`: it still succeeds, so only ratings tell).
   */
  drift?: DriftKind;
}

export type DriftKind = 'break' | 'degrade';

/**
 * The simulated quality signals of a run. Every routed answer's score is the data's; what the policy
 * learns of it depends on who tells: its user (`feedbackRate` of answers), else a judge (`judgeRate`
 * of the others, wrong with probability `judgeNoise`: it gives 1 − score), else nobody. As in the
 * gateway, whether the judge grades a request's answer is drawn as the request starts, and the
 * policy is told (RoutingContext.graded). A shadow call
 * (`shadowRate` of requests) sends the query to the policy's `shadowCandidate` too; the judge scores
 * both answers, and the client's answer is the policy's choice, never the shadow's.
 */
export interface SignalOptions {
  feedbackRate: number;
  judgeRate: number;
  judgeNoise: number;
  shadowRate: number;
  /** The judge's model (index in the data): a judge call costs what that model costs on the query. */
  judgeModel: number;
  /** Seeds the draws (who rates, the judge's mistakes, which requests get a shadow call). */
  seed: number;
}

/** Every answer rated by its user, as `eval` measured before the signals could be chosen. */
export const FULL_FEEDBACK: Omit<SignalOptions, 'judgeModel' | 'seed'> = { feedbackRate: 1, judgeRate: 0, judgeNoise: 0, shadowRate: 0 };

export interface ReplayResult {
  /** Routed queries. */
  n: number;
  /** Sum of the chosen models' scores. */
  qualitySum: number;
  /** Dollars of the chosen models. */
  costSum: number;
  /** Times each model was chosen, indexed like the models. */
  picks: number[];
  /** Judge calls and their dollars (not in `costSum`). */
  judgeCalls: number;
  judgeCostSum: number;
  /** Shadow calls and the dollars of their answers (not in `costSum`; their judging is in `judgeCostSum`). */
  shadowCalls: number;
  shadowCostSum: number;
  /** Answers whose score reached the policy as a user's rating. */
  rated: number;
  /** With a drift: the model that changed, and per request after the change whether it was chosen (1) or not (0). */
  driftModel: number | null;
  driftPicks: number[];
}

/** The trace store keeps this much of a prompt, as the gateway's default `traces.storePrompts: truncated`. */
const STORED_PROMPT_CHARS = 200;
/** Replayed traces get consecutive times (1 ms apart) from here. */
const START_TIME = Date.UTC(2024, 0, 1);

class ReplaySession {
  readonly store = new SqliteTraceStore({ path: ':memory:' });
  readonly policy: RouterPolicy;
  readonly keys: string[];
  private readonly index = new Map<string, number>();
  private pending: Promise<void>[] = [];
  private failure: Error | undefined;
  private traces = 0;
  private readonly signals: SignalOptions;
  private readonly draw: () => number;

  constructor(private readonly options: ReplayOptions) {
    this.signals = options.signals ?? { ...FULL_FEEDBACK, judgeModel: 0, seed: options.seed };
    this.draw = mulberry32(this.signals.seed ^ 0x2545f491);
    this.keys = options.models.map((m) => m.key);
    this.keys.forEach((key, i) => this.index.set(key, i));
    this.policy = createPolicy(options.policy, {
      models: options.models,
      minSamples: options.minSamples,
      costWeight: options.costWeight,
      latencyWeight: 0,
      halfLife: options.halfLife,
      seed: options.seed,
      source: this.store,
      priorWeight: options.priorWeight,
      textChars: STORED_PROMPT_CHARS,
    });
  }

  /**
   * Records model `i`'s answer to `query` as a successful trace with feedback `feedback` from
   * `feedbackSource` (null: unrated); returns its trace id.
   */
  record(
    query: EvalQuery,
    i: number,
    reason: string,
    routed: boolean,
    source: TraceSource = 'live',
    feedback: number | null = query.scores[i] as number,
    feedbackSource: FeedbackSource | null = source === 'offline' ? 'offline' : 'human',
    outcome: Outcome = 'success',
  ): string {
    const seq = this.traces++;
    const model = this.keys[i] as string;
    const cost = outcome === 'success' ? (query.costs[i] as number) : 0;
    const time = START_TIME + seq;
    const trace = newTrace({
      id: `replay-${seq}`,
      time,
      requestId: `line-${query.line}`,
      query: query.prompt.length > STORED_PROMPT_CHARS ? query.prompt.slice(0, STORED_PROMPT_CHARS) : query.prompt,
      queryLength: query.prompt.length,
      queryClass: query.queryClass,
      modelKey: model,
      upstreamModel: model,
      routed,
      reason,
      attempt: 1,
      outcome,
      status: outcome === 'success' ? 200 : 500,
      latencyMs: 0,
      costUsd: cost,
      feedback,
      feedbackTime: feedback === null ? null : time,
      feedbackSource: feedback === null ? null : feedbackSource,
      source,
    });
    // A rejection is kept and rethrown at the next flush (never left unhandled meanwhile).
    this.pending.push(
      this.store.insert(trace).catch((err: unknown) => {
        this.failure ??= err as Error;
      }),
    );
    return trace.id;
  }

  /** The drift in force (from halfway through a run with `drift`). */
  private drift: { model: number; kind: DriftKind } | null = null;

  /** Model `i`'s score on `query`: the data's, or 0 once it broke or degraded. */
  private score(query: EvalQuery, i: number): number {
    return this.drift !== null && this.drift.model === i ? 0 : (query.scores[i] as number);
  }

  /** Whether model `i` fails every request now (a `break` drift). */
  private broken(i: number): boolean {
    return this.drift !== null && this.drift.kind === 'break' && this.drift.model === i;
  }

  /**
   * What the policy is told of model `i`'s answer: a user's rating, else the judge's score when the
   * request was sampled for the judge (`graded`), else nothing (a failure tells by itself).
   */
  private signal(query: EvalQuery, i: number, graded: boolean): { feedback: number | null; source: FeedbackSource } {
    if (this.broken(i)) return { feedback: null, source: 'human' };
    const score = this.score(query, i);
    if (this.draw() < this.signals.feedbackRate) return { feedback: score, source: 'human' };
    if (graded) return { feedback: this.judge(query, score), source: 'judge' };
    return { feedback: null, source: 'human' };
  }

  /** A judge call: its dollars, and the score it gives (wrong with probability judgeNoise). */
  private judge(query: EvalQuery, score: number): number {
    this.result.judgeCalls += 1;
    this.result.judgeCostSum += query.costs[this.signals.judgeModel] as number;
    return this.draw() < this.signals.judgeNoise ? 1 - score : score;
  }

  private result: ReplayResult = emptyResult(0);

  /** Routes one query: select, record, observe (bandit feedback: only the chosen model's outcome). */
  route(query: EvalQuery, result: ReplayResult): void {
    this.result = result;
    // The request's context, as the gateway builds it once per request (a single user message).
    const context: QueryContext = {
      query: query.prompt,
      system: '',
      messageCount: 1,
      tools: false,
      images: false,
      responseFormat: false,
      queryClass: query.queryClass,
    };
    const ctx = { query: query.prompt, queryClass: query.queryClass, available: this.keys, context };
    const shadow = this.signals.shadowRate > 0 && this.draw() < this.signals.shadowRate;
    const graded = this.signals.judgeRate > 0 && this.draw() < this.signals.judgeRate;
    // With shadow calls, every request is served the best estimate: the shadow calls explore (as the
    // gateway does while router.shadow has budget left).
    const decision = this.policy.select({ ...ctx, graded, exploit: this.signals.shadowRate > 0 });
    const i = this.modelIndex(decision.model);
    const served = this.signal(query, i, graded);
    // A shadow call is judged together with the served answer: the pair is what the judge compares.
    const signal =
      shadow && served.feedback === null && !this.broken(i) ? { feedback: this.judge(query, this.score(query, i)), source: 'judge' as const } : served;
    this.answer(query, i, decision.reason, signal, context);
    if (signal.source === 'human' && signal.feedback !== null) result.rated += 1;
    result.n += 1;
    result.qualitySum += this.score(query, i);
    result.costSum += this.broken(i) ? 0 : (query.costs[i] as number);
    result.picks[i] = (result.picks[i] as number) + 1;
    if (this.drift !== null) result.driftPicks.push(i === this.drift.model ? 1 : 0);
    if (!shadow) return;
    const candidate = this.policy.shadowCandidate?.(ctx, decision.model);
    if (candidate === undefined) return;
    const j = this.modelIndex(candidate);
    result.shadowCalls += 1;
    result.shadowCostSum += query.costs[j] as number;
    const shadowSignal = this.broken(j) ? { feedback: null, source: 'human' as const } : { feedback: this.judge(query, this.score(query, j)), source: 'judge' as const };
    this.answer(query, j, 'shadow', shadowSignal, context, true);
  }

  /** Records model `i`'s answer and lets the policy observe it with what it is told of its quality. */
  private answer(
    query: EvalQuery,
    i: number,
    reason: string,
    signal: { feedback: number | null; source: FeedbackSource },
    context: QueryContext,
    shadow = false,
  ): void {
    const outcome: Outcome = this.broken(i) ? 'error' : 'success';
    const id = this.record(query, i, reason, true, 'live', signal.feedback, signal.source, outcome);
    this.policy.observe({
      traceId: id,
      query: query.prompt,
      queryClass: query.queryClass,
      model: this.keys[i] as string,
      outcome,
      latencyMs: 0,
      costUsd: outcome === 'success' ? (query.costs[i] as number) : 0,
      feedback: signal.feedback,
      feedbackSource: signal.source,
      shadow,
      context,
    });
  }

  private modelIndex(model: string): number {
    const i = this.index.get(model);
    if (i === undefined) {
      throw new Error(`policy "${this.options.policy}" chose "${model}", which is not a model of the data`);
    }
    return i;
  }

  /** Waits until every trace handed over so far is committed. */
  async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Routes `queries` in order, with a batch update after every `updateEvery` of them. */
  async routeAll(queries: readonly EvalQuery[]): Promise<ReplayResult> {
    const result = emptyResult(this.keys.length);
    const every = this.options.updateEvery;
    const changeAt = this.options.drift !== undefined ? Math.floor(queries.length / 2) : -1;
    for (let q = 0; q < queries.length; q++) {
      if (q === changeAt) {
        // The model chosen most so far is the one whose change hurts most.
        const model = result.picks.indexOf(Math.max(...result.picks));
        this.drift = { model, kind: this.options.drift as DriftKind };
        result.driftModel = model;
      }
      this.route(queries[q] as EvalQuery, result);
      this.options.onQuery?.();
      if (every > 0 && (q + 1) % every === 0) {
        await this.flush();
        await this.policy.updateFromTraces();
      }
    }
    await this.flush();
    return result;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.store.close();
    }
  }
}

/**
 * Online mode: from cold start (as the gateway boots: one update over the empty store), route
 * `queries` in the given order with bandit feedback.
 */
export async function replayOnline(queries: readonly EvalQuery[], options: ReplayOptions): Promise<ReplayResult> {
  const session = new ReplaySession(options);
  try {
    await session.policy.updateFromTraces();
    return await session.routeAll(queries);
  } finally {
    await session.close();
  }
}

/**
 * Train/test mode: every model's trace on every train query goes into the store first (full
 * information, in the given order, a query's models in data order), then one update, then the test
 * queries are routed as in online mode. Warm start (`trainSource` 'offline'): the same, with the train
 * traces marked offline, as `tracegate import --eval` loads them: a prior of `priorWeight`.
 */
export async function replayTrainTest(
  train: readonly EvalQuery[],
  test: readonly EvalQuery[],
  options: ReplayOptions,
  trainSource: TraceSource = 'live',
): Promise<ReplayResult> {
  const session = new ReplaySession(options);
  try {
    for (const query of train) {
      for (let i = 0; i < session.keys.length; i++) session.record(query, i, trainSource === 'live' ? 'train' : 'offline', false, trainSource);
    }
    await session.flush();
    await session.policy.updateFromTraces();
    return await session.routeAll(test);
  } finally {
    await session.close();
  }
}

function emptyResult(models: number): ReplayResult {
  return {
    n: 0,
    qualitySum: 0,
    costSum: 0,
    picks: new Array<number>(models).fill(0),
    driftModel: null,
    driftPicks: [],
    judgeCalls: 0,
    judgeCostSum: 0,
    shadowCalls: 0,
    shadowCostSum: 0,
    rated: 0,
  };
}
