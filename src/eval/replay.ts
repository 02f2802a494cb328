import { createPolicy } from '../routing/registry.js';
import type { ModelInfo, QueryContext, RouterPolicy } from '../routing/types.js';
import { SqliteTraceStore } from '../traces/sqlite-store.js';
import type { TraceRecord, TraceSource } from '../traces/types.js';
import type { EvalQuery } from './dataset.js';

/**
 * One replay run: a fresh policy over a fresh in-memory trace store, fed as the gateway feeds it
 * (src/http/record-attempt.ts): build the trace, hand it to store.insert, then policy.observe at once.
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
}

export interface ReplayResult {
  /** Routed queries. */
  n: number;
  /** Sum of the chosen models' scores. */
  qualitySum: number;
  /** Dollars of the chosen models. */
  costSum: number;
  /** Times each model was chosen, indexed like the models. */
  picks: number[];
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

  constructor(private readonly options: ReplayOptions) {
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

  /** Records model `i`'s outcome on `query` as a successful trace with feedback = its score. */
  record(query: EvalQuery, i: number, reason: string, routed: boolean, source: TraceSource = 'live'): void {
    const seq = this.traces++;
    const model = this.keys[i] as string;
    const score = query.scores[i] as number;
    const cost = query.costs[i] as number;
    const time = START_TIME + seq;
    const trace: TraceRecord = {
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
      outcome: 'success',
      status: 200,
      error: null,
      latencyMs: 0,
      ttfbMs: null,
      promptTokens: null,
      completionTokens: null,
      costUsd: cost,
      feedback: score,
      feedbackTime: time,
      feedbackComment: null,
      feedbackSource: 'human',
      keyName: null,
      source,
      instanceId: null,
    };
    // A rejection is kept and rethrown at the next flush (never left unhandled meanwhile).
    this.pending.push(
      this.store.insert(trace).catch((err: unknown) => {
        this.failure ??= err as Error;
      }),
    );
  }

  /** Routes one query: select, record, observe (bandit feedback: only the chosen model's outcome). */
  route(query: EvalQuery, result: ReplayResult): void {
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
    const decision = this.policy.select({ query: query.prompt, queryClass: query.queryClass, available: this.keys, context });
    const i = this.index.get(decision.model);
    if (i === undefined) {
      throw new Error(`policy "${this.options.policy}" chose "${decision.model}", which is not a model of the data`);
    }
    this.record(query, i, decision.reason, true);
    const score = query.scores[i] as number;
    const cost = query.costs[i] as number;
    this.policy.observe({
      traceId: `replay-${this.traces - 1}`,
      query: query.prompt,
      queryClass: query.queryClass,
      model: decision.model,
      outcome: 'success',
      latencyMs: 0,
      costUsd: cost,
      feedback: score,
      context,
    });
    result.n += 1;
    result.qualitySum += score;
    result.costSum += cost;
    result.picks[i] = (result.picks[i] as number) + 1;
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
    const result: ReplayResult = { n: 0, qualitySum: 0, costSum: 0, picks: this.keys.map(() => 0) };
    const every = this.options.updateEvery;
    for (let q = 0; q < queries.length; q++) {
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
