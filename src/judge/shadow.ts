import type { ShadowConfig } from '../core/config.js';
import type { Services } from '../pipeline/services.js';
import type { ChatRequest } from '../pipeline/types.js';
import { markHealth } from '../pipeline/attempt-failure.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import { Random } from '../routing/random.js';
import { AttemptAbort } from '../upstream/attempt.js';
import { statusCause } from '../upstream/failure-kind.js';
import { wholeAnswerText } from './answer-text.js';
import type { Judge } from './judge.js';
import { DailySpend } from './limits.js';
import { settleOrAbort, sideCall } from './side-call.js';

/** Shadow calls in flight at once; a sampled request beyond them gets none (`busy`). */
const MAX_IN_FLIGHT = 4;
const CLOSE_GRACE_MS = 1000;

/** A routed request whose answer went out, to be sent to another model as well. */
export interface ShadowJob {
  request: ChatRequest;
  info: RequestInfo;
  /** The model key that answered the client, its trace and its answer's text (null if unknown). */
  served: string;
  servedTraceId: string;
  servedAnswer: string | null;
  /** Whether the served answer is already queued for the judge (sampled for it on its own). */
  servedJudged: boolean;
}

export type SkipReason = 'budget' | 'no_candidate' | 'busy';

/** What the shadow has done since the gateway started (GET /stats, `shadow`). */
export interface ShadowSnapshot {
  /** Shadow calls made, and how many answered. */
  calls: number;
  answered: number;
  failed: number;
  skipped: Record<SkipReason, number>;
  dollars_today: number;
  daily_budget_usd: number;
}

/**
 * Shadow exploration: after a sampled routed request's answer is out, the same request goes (not
 * streamed) to the model the policy most wants to learn about (`policy.shadowCandidate`, else
 * another routed model at random). Its answer reaches no client: it is traced (reason `shadow`, the
 * request's class, routed), the policy observes it, and the judge grades it beside the served one.
 */
export class Shadow {
  private readonly spend: DailySpend;
  private readonly random: Random;
  private readonly running = new Set<Promise<void>>();
  private readonly stop = new AttemptAbort();
  private closed = false;
  private readonly counts = { calls: 0, answered: 0, failed: 0 };
  private readonly skipped: Record<SkipReason, number> = { budget: 0, no_candidate: 0, busy: 0 };

  constructor(
    private readonly gw: Pick<Services, 'config' | 'health' | 'logger' | 'metrics' | 'policy' | 'routedFor' | 'store' | 'upstreams'>,
    private readonly config: ShadowConfig,
    private readonly judge: Judge,
    options: { now?: () => number } = {},
  ) {
    this.spend = new DailySpend(config.dailyBudgetUsd, options.now ?? Date.now);
    const seed = gw.config.router.seed;
    this.random = new Random(seed === undefined ? undefined : seed ^ 0x53484457);
    this.stop.setMaxListeners(0);
  }
  /**
   * Whether shadow calls explore now (their budget is not spent): routed requests are then served
   * the policy's best estimate, and exploration costs dollars, not the users' answers.
   */
  exploring(): boolean {
    return !this.closed && !this.spend.exhausted();
  }


  /** Whether a routed request starting now gets a shadow call (`rate`). */
  sample(): boolean {
    return this.config.rate > 0 && this.random.uniform() < this.config.rate;
  }

  /** Starts the shadow call of an answered request, in the background. */
  run(job: ShadowJob): void {
    if (this.closed) return;
    if (this.spend.exhausted()) return this.skip('budget');
    if (this.running.size >= MAX_IN_FLIGHT) return this.skip('busy');
    const candidate = this.candidate(job);
    if (candidate === undefined) return this.skip('no_candidate');
    const task: Promise<void> = this.call(job, candidate)
      .catch((err: unknown) => this.gw.logger.error({ err, requestId: job.info.requestId }, 'shadow call failed'))
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  snapshot(): ShadowSnapshot {
    return {
      ...this.counts,
      skipped: { ...this.skipped },
      dollars_today: this.spend.today(),
      daily_budget_usd: this.config.dailyBudgetUsd,
    };
  }

  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closed = true;
    await settleOrAbort(this.running, this.stop, graceMs);
  }

  private skip(reason: SkipReason): void {
    this.skipped[reason]++;
    this.gw.metrics.shadowSkipped(reason);
  }

  /** Routed chat models other than the served one, out of any cooldown and with room. */
  private candidate(job: ShadowJob): string | undefined {
    const gw = this.gw;
    const now = Date.now();
    const available = gw.routedFor('chat').filter(
      (k) => k !== job.served && gw.health.isAvailable(k, now) && gw.upstreams.get(k)!.hasCapacity(),
    );
    if (available.length === 0) return undefined;
    const ctx = { query: job.info.query, queryClass: job.info.queryClass, available, context: job.info.context };
    const chosen =
      gw.policy.shadowCandidate !== undefined
        ? gw.policy.shadowCandidate(ctx, job.served)
        : available[Math.floor(this.random.uniform() * available.length)];
    return chosen !== undefined && available.includes(chosen) ? chosen : undefined;
  }

  private async call(job: ShadowJob, model: string): Promise<void> {
    const gw = this.gw;
    const upstream = gw.upstreams.get(model)!;
    const body: Record<string, unknown> = { ...job.request, model: upstream.model, stream: false };
    delete body.stream_options;
    const info: RequestInfo = { ...job.info, time: Date.now() };
    const call = await sideCall(gw, upstream, JSON.stringify(body), {
      info,
      reason: 'shadow',
      attempt: 1,
      timeoutMs: upstream.timeoutMs,
      observe: true,
      signal: this.stop,
    });
    this.spend.add(call.costUsd);
    if (call.costUsd) gw.metrics.shadowSpent(call.costUsd);
    this.counts.calls++;
    const failure = call.failure;
    if (failure === null) {
      this.counts.answered++;
      gw.metrics.shadowCall('success');
      gw.health.success(model);
    } else {
      this.counts.failed++;
      gw.metrics.shadowCall(failure.kind === 'timeout' ? 'timeout' : 'error');
      markHealth(gw, failure, statusCause(failure), model, true);
      return;
    }
    if (this.closed) return;
    const exchange = { system: job.info.context?.system ?? '', query: job.info.query, requestId: job.info.requestId };
    if (!job.servedJudged && job.servedAnswer !== null) {
      this.judge.enqueue({ ...exchange, traceId: job.servedTraceId, answer: job.servedAnswer });
    }
    const answer = wholeAnswerText(call.payload!);
    if (answer !== null) this.judge.enqueue({ ...exchange, traceId: call.traceId, answer });
  }
}
