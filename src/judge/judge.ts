import type { JudgeConfig } from '../core/config.js';
import type { Services } from '../pipeline/services.js';
import { storedText, type RequestInfo } from '../pipeline/record-attempt.js';
import { Random } from '../routing/random.js';
import { AttemptAbort } from '../upstream/attempt.js';
import { JUDGE_CLASS } from '../core/reserved-classes.js';
import { DailySpend, MinuteWindow } from './limits.js';
import { settleOrAbort, sideCall } from './side-call.js';
import { judgeRequestBody, verdictOfCompletion, type GradedExchange, type Verdict } from './verdict.js';

export { JUDGE_CLASS };

/** Judge calls in flight at once. */
const CONCURRENCY = 2;
/** How long closing waits for the calls in flight before aborting them. */
const CLOSE_GRACE_MS = 1000;

/** One answer to grade: its trace, and the text the judge reads (kept in memory only). */
export interface JudgeJob extends GradedExchange {
  traceId: string;
  /** The request's id, also on the judge's own trace. */
  requestId: string;
}

export type DropReason = 'queue_full' | 'rate_limited' | 'budget';

/** What the judge has done since the gateway started (GET /stats, `judge`). */
export interface JudgeSnapshot {
  model: string;
  /** Answers graded (each may take more than one upstream attempt), by outcome. */
  calls: number;
  scored: number;
  unparsed: number;
  failed: number;
  /** Scores not stored because a person had already rated the answer. */
  refused: number;
  /** Sampled answers not graded, by reason. */
  dropped: Record<DropReason, number>;
  /** Answers waiting now. */
  queued: number;
  /** Dollars of judge calls this UTC day, and the day's budget. */
  dollars_today: number;
  daily_budget_usd: number;
}

export interface JudgeOptions {
  /** The clock of the per-minute cap and the daily budget. */
  now?: () => number;
}

/**
 * Grades sampled answers with a model, in the background: a FIFO queue (`queueSize`), at most
 * `maxPerMinute` calls started in any minute, a dollar budget per UTC day, a timeout per call and
 * one retry of a retryable failure. A score lands on the answer's trace as `judge` feedback (which
 * never replaces a person's) and reaches the policy. Every judge call is traced (class `judge`,
 * reason `judge`, not routed) and is no routing evidence.
 */
export class Judge {
  private readonly queue: JudgeJob[] = [];
  private readonly window: MinuteWindow;
  private readonly spend: DailySpend;
  private readonly random: Random;
  private readonly running = new Set<Promise<void>>();
  private readonly stop = new AttemptAbort();
  /** Models that answered 400 to `response_format`: it is no longer sent to them. */
  private readonly noJsonMode = new Set<string>();
  private closed = false;
  private readonly counts = { calls: 0, scored: 0, unparsed: 0, failed: 0, refused: 0 };
  private readonly dropped: Record<DropReason, number> = { queue_full: 0, rate_limited: 0, budget: 0 };

  constructor(
    private readonly gw: Pick<Services, 'config' | 'logger' | 'metrics' | 'policy' | 'store' | 'upstreams'>,
    private readonly config: JudgeConfig,
    options: JudgeOptions = {},
  ) {
    const now = options.now ?? Date.now;
    this.window = new MinuteWindow(config.maxPerMinute, now);
    this.spend = new DailySpend(config.dailyBudgetUsd, now);
    const seed = gw.config.router.seed;
    this.random = new Random(seed === undefined ? undefined : seed ^ 0x4a554447);
    this.stop.setMaxListeners(0);
  }

  get model(): string {
    return this.config.model;
  }

  /** Whether a request starting now has its answer graded (`sampleRate`). */
  sample(): boolean {
    return this.config.sampleRate > 0 && this.random.uniform() < this.config.sampleRate;
  }

  /**
   * Whether an answer sampled now would be graded as things stand (the judge is open, its budget not
   * spent, its minute not full): what tells the policy that exploring on this request brings
   * evidence back.
   */
  grading(): boolean {
    return !this.closed && !this.spend.exhausted() && this.window.open();
  }

  /** Queues an answer to grade; false (and counted) when it is dropped. */
  enqueue(job: JudgeJob): boolean {
    if (this.closed) return false;
    if (this.spend.exhausted()) return this.drop('budget');
    if (!this.window.open()) return this.drop('rate_limited');
    if (this.queue.length >= this.config.queueSize) return this.drop('queue_full');
    this.queue.push(job);
    this.pump();
    return true;
  }

  /** Dollars of judge calls today. */
  spentToday(): number {
    return this.spend.today();
  }

  snapshot(): JudgeSnapshot {
    return {
      model: this.config.model,
      ...this.counts,
      dropped: { ...this.dropped },
      queued: this.queue.length,
      dollars_today: this.spend.today(),
      daily_budget_usd: this.config.dailyBudgetUsd,
    };
  }

  /** Drops the queue, lets the calls in flight finish for a moment, then aborts them. */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await settleOrAbort(this.running, this.stop, graceMs);
  }

  private drop(reason: DropReason): false {
    this.dropped[reason]++;
    this.gw.metrics.judgeDropped(reason);
    return false;
  }

  private pump(): void {
    while (!this.closed && this.running.size < CONCURRENCY && this.queue.length > 0) {
      const job = this.queue.shift()!;
      // The budget may have been spent, and the minute filled, while the job waited.
      if (this.spend.exhausted()) {
        this.drop('budget');
        continue;
      }
      if (!this.window.take()) {
        this.drop('rate_limited');
        continue;
      }
      const task: Promise<void> = this.grade(job)
        .catch((err: unknown) => this.gw.logger.error({ err, traceId: job.traceId }, 'judge failed'))
        .finally(() => {
          this.running.delete(task);
          this.pump();
        });
      this.running.add(task);
    }
  }

  private async grade(job: JudgeJob): Promise<void> {
    const upstream = this.gw.upstreams.get(this.config.model)!;
    const info: RequestInfo = {
      requestId: job.requestId,
      time: Date.now(),
      query: '',
      queryClass: JUDGE_CLASS,
      routed: false,
      keyName: null,
    };
    let verdict: Verdict | null = null;
    let answered = false;
    let retried = false;
    for (let attempt = 1; ; attempt++) {
      const jsonMode = !this.noJsonMode.has(upstream.key);
      const body = judgeRequestBody(upstream.model, job, this.config.prompt, jsonMode);
      info.time = Date.now();
      const call = await sideCall(this.gw, upstream, body, {
        info,
        reason: 'judge',
        attempt,
        timeoutMs: this.config.timeoutMs,
        observe: false,
        signal: this.stop,
      });
      this.spend.add(call.costUsd);
      if (call.costUsd) this.gw.metrics.judgeSpent(call.costUsd);
      if (call.payload !== null) {
        answered = true;
        verdict = verdictOfCompletion(call.payload);
        break;
      }
      const failure = call.failure!;
      // A model that does not take `response_format` is asked again without it (not a retry).
      if (jsonMode && failure.kind === 'status' && failure.status === 400) {
        this.noJsonMode.add(upstream.key);
        continue;
      }
      if (failure.retryable && !retried && !this.closed) {
        retried = true;
        continue;
      }
      break;
    }
    const outcome = !answered ? 'failed' : verdict === null ? 'unparsed' : 'scored';
    this.counts.calls++;
    this.counts[outcome]++;
    this.gw.metrics.judgeCall(outcome);
    if (verdict !== null) await this.apply(job, verdict);
  }

  /** The score on the answer's trace, as `judge` feedback; the policy learns it when it was stored. */
  private async apply(job: JudgeJob, verdict: Verdict): Promise<void> {
    const result = await this.gw.store.setFeedback(job.traceId, {
      score: verdict.score,
      // The reason may quote the exchange: it is kept as a prompt would be (traces.storePrompts).
      comment: verdict.reason === null ? null : storedText(this.gw, verdict.reason),
      time: Date.now(),
      source: 'judge',
    });
    if (result === undefined) return;
    if (!result.applied) {
      this.counts.refused++;
      return;
    }
    this.gw.metrics.feedback(result.trace.modelKey, 'judge');
    this.gw.policy.observeFeedback({
      traceId: result.trace.id,
      queryClass: result.trace.queryClass,
      model: result.trace.modelKey,
      outcome: 'success',
      score: verdict.score,
      previous: result.previous,
      source: 'judge',
    });
  }
}
