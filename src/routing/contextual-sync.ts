import type { ArmEvidence, FeedbackSource, TraceRecord } from '../traces/types.js';
import { isRoutingEvidence } from '../core/reserved-classes.js';
import { classInput, clamp01, traceInput, type Learner, type PendingTrace, type State } from './contextual-state.js';
import { ReplayBuffer } from './pending-feedback.js';
import { offlineTraceWeight, ratingWeight } from './prior.js';
import type { EvidenceSource, FeedbackObservation, Observation, QueryClass, UpdateSummary } from './types.js';

/*
 * The contextual policy's reads of the trace store: a full rebuild (offline evidence as a prior, then
 * the live traces), a fold-in of what was stored since the last update, or, for a source with only
 * per-class sums, a warm start from those. Each learns a trace as live observation does (Learner), so
 * a rebuild gives the estimates the online updates gave, up to ordering: a rating is learned when it
 * was given (its feedback time, among the traces recorded after it), as it reached the policy online.
 */

/** A rebuild reads at most this many of the newest live traces, and of the newest offline traces. */
export const MAX_REBUILD_LIVE = 50_000;
export const MAX_REBUILD_OFFLINE = 100_000;
/** Names are read from one observation in this many (a second, named pass over the text). */
export const NAME_EVERY = 8;
/** A full rebuild at most this often (ms); the updates in between fold in the new traces. */
const FULL_REBUILD_MS = 10 * 60_000;
/** A fold-in reads this many traces more than the store's count grew by (reordering, concurrent writers). */
const SYNC_MARGIN = 500;
/** A rebuild lets the event loop run after this many traces. */
const YIELD_EVERY = 2_000;

/** What the sync reads and replaces in the policy. */
export interface SyncHost {
  readonly learner: Learner;
  readonly priorWeight: number;
  /** The state select() and observe() use now, and its replacement by a rebuilt one. */
  current(): State;
  replace(state: State): void;
  newState(): State;
  /** The model the policy would choose for the class without exploring. */
  classChoice(state: State, queryClass: QueryClass): string;
  observe(observation: Observation): void;
  observeFeedback(feedback: FeedbackObservation): void;
}

interface QueuedRating {
  time: number;
  seq: number;
  entry: PendingTrace;
  score: number;
  source: FeedbackSource | null;
}

/** Ratings read with their trace, to be learned at their feedback time (a min-heap on time, then arrival). */
class RatingQueue {
  private readonly heap: QueuedRating[] = [];
  private seq = 0;

  push(time: number, entry: PendingTrace, score: number, source: FeedbackSource | null): void {
    const heap = this.heap;
    heap.push({ time, seq: this.seq++, entry, score, source });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Hands over, oldest first, the ratings given at or before `time` (all of them without one). */
  drain(time: number, apply: (rating: QueuedRating) => void): void {
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.time <= time) {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
          if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m]!, heap[i]!];
          i = m;
        }
      }
      apply(top);
    }
  }
}

function before(a: QueuedRating, b: QueuedRating): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export class StoreSync {
  /** What arrives while a rebuild reads the store, replayed on the rebuilt state. */
  readonly replay = new ReplayBuffer();
  /** The store's trace count at the last update (null: never), and when the last full rebuild started. */
  private lastCount: number | null = null;
  private lastFull = 0;
  private updates: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: SyncHost,
    private readonly source: EvidenceSource | undefined,
  ) {}

  /**
   * Rebuilds from the store, or folds in what it has not seen yet. The first update, one with a time
   * range, one after traces were deleted (purge), and one FULL_REBUILD_MS after the last full
   * rebuild read everything again (bounded: the newest MAX_REBUILD_* traces); the others read only
   * the newest live traces since the last update (the store's count tells how many) and learn those
   * it has not observed — another instance's, on a shared store — and the feedback given to them
   * since. Updates run one at a time.
   */
  update(range: { since?: number; until?: number } = {}): Promise<UpdateSummary> {
    const source = this.source;
    if (source === undefined) return Promise.resolve({ error: 'no analyzer configured' });
    const run = this.updates.then(async () => {
      const full =
        range.since !== undefined ||
        range.until !== undefined ||
        this.lastCount === null ||
        source.exportTraces === undefined ||
        source.count === undefined ||
        Date.now() - this.lastFull >= FULL_REBUILD_MS;
      if (!full) {
        const summary = await this.foldIn(source);
        if (summary !== null) return summary;
      }
      return this.rebuild(source, range);
    });
    this.updates = run.catch(() => undefined);
    return run;
  }

  /** Learns the live traces stored since the last update that it has not observed; null: rebuild instead. */
  private async foldIn(source: EvidenceSource): Promise<UpdateSummary | null> {
    const count = await source.count!();
    const added = count - (this.lastCount ?? 0);
    if (added < 0) return null; // traces were deleted: read everything again
    const host = this.host;
    const state = host.current();
    const before = new Map<QueryClass, string>();
    for (const queryClass of state.classes.keys()) before.set(queryClass, host.classChoice(state, queryClass));
    const ratings = new RatingQueue();
    let learned = 0;
    let read = 0;
    for await (const t of source.exportTraces!({ source: 'live', newest: added + SYNC_MARGIN })) {
      if (++read % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      if (host.current() !== state) return null;
      this.drain(state, ratings, t.time);
      const known = state.pending.get(t.id);
      if (known !== undefined) {
        // Observed here, or read before: only a rating given elsewhere since then is new (a repeat is
        // a no-op).
        if (t.outcome === 'success' && t.feedback !== null) ratings.push(t.feedbackTime ?? t.time, known, t.feedback, t.feedbackSource);
        continue;
      }
      if (this.learnTrace(state, t, 1, true, read, ratings)) learned++;
    }
    this.drain(state, ratings, Infinity);
    this.lastCount = count;
    const changes: Record<string, { old: string; new: string }> = {};
    for (const queryClass of state.classes.keys()) {
      const old = before.get(queryClass) ?? '';
      const now = host.classChoice(state, queryClass);
      if (now !== old) changes[queryClass] = { old, new: now };
    }
    return { updated: learned > 0, query_classes: state.classes.size, total_traces: learned, changes };
  }

  /**
   * Reads the newest offline traces (as a prior: weighted, no forgetting), then the newest live
   * traces (with forgetting), into a new state, which then replaces the current one; what arrived
   * meanwhile is replayed on it (known trace ids are skipped, feedback replaces).
   */
  private async rebuild(source: EvidenceSource, range: { since?: number; until?: number }): Promise<UpdateSummary> {
    const host = this.host;
    this.replay.start();
    try {
      const fresh = host.newState();
      // Counted before reading: what is added meanwhile is read again by the next fold-in (and skipped if known).
      const count = source.count !== undefined ? await source.count() : null;
      const started = Date.now();
      let total = 0;
      if (source.exportTraces !== undefined) {
        const offline = await source.evidence({ source: 'offline', since: range.since, until: range.until });
        const offlineCount = new Map<string, number>();
        for (const row of offline) offlineCount.set(`${row.queryClass}\u0000${row.model}`, row.count);
        let read = 0;
        const pause = async () => {
          if (++read % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        };
        for await (const t of source.exportTraces({ ...range, source: 'offline', newest: MAX_REBUILD_OFFLINE })) {
          const n = offlineCount.get(`${t.queryClass}\u0000${t.modelKey}`) ?? 1;
          if (this.learnTrace(fresh, t, offlineTraceWeight(host.priorWeight, n), false, read)) total++;
          await pause();
        }
        const ratings = new RatingQueue();
        for await (const t of source.exportTraces({ ...range, source: 'live', newest: MAX_REBUILD_LIVE })) {
          this.drain(fresh, ratings, t.time);
          if (this.learnTrace(fresh, t, 1, true, read, ratings)) total++;
          await pause();
        }
        this.drain(fresh, ratings, Infinity);
      } else {
        total = await this.warmFromEvidence(fresh, source, range);
      }
      const whole = range.since === undefined && range.until === undefined;
      if (total === 0) {
        if (whole) {
          this.lastCount = count;
          this.lastFull = started;
        }
        return { updated: false, reason: 'no traces' };
      }

      // From here on nothing awaits: the swap is atomic for select() and observe().
      if (whole) {
        this.lastCount = count;
        this.lastFull = started;
      }
      const current = host.current();
      const before = new Map<QueryClass, string>();
      for (const queryClass of fresh.classes.keys()) {
        if (current.classes.has(queryClass)) before.set(queryClass, host.classChoice(current, queryClass));
      }
      // Selection shares are kept (the store has none).
      for (const [queryClass, stats] of current.classes) {
        const target = fresh.classStats(queryClass);
        if (target === undefined) continue;
        for (const [model, p] of stats.picks) target.picks.set(model, { ...p });
        target.pickTick = stats.pickTick;
      }
      host.replace(fresh);
      const changes: Record<string, { old: string; new: string }> = {};
      for (const queryClass of fresh.classes.keys()) {
        if (!fresh.classes.get(queryClass)!.counts.size && !before.has(queryClass)) continue;
        const old = before.get(queryClass) ?? '';
        const now = host.classChoice(fresh, queryClass);
        if (now !== old) changes[queryClass] = { old, new: now };
      }
      this.replay.replayInto(host);
      return { updated: true, query_classes: fresh.classes.size, total_traces: total, changes };
    } finally {
      this.replay.stop();
    }
  }

  /** Learns the queued ratings given at or before `time`. */
  private drain(state: State, ratings: RatingQueue, time: number): void {
    ratings.drain(time, (r) => this.host.learner.rate(state, r.entry, r.score, r.source));
  }

  /**
   * Learns one stored trace into `state`; false if it is not routing evidence (its model is not
   * configured, or its class is reserved: the judge's calls, embeddings). A live trace's rating given
   * after the trace was recorded goes to `ratings`, to be learned at its feedback time.
   */
  private learnTrace(state: State, t: TraceRecord, weight: number, live: boolean, read: number, ratings?: RatingQueue): boolean {
    if (!isRoutingEvidence(t.queryClass)) return false;
    const m = state.models.get(t.modelKey);
    if (m === undefined) return false;
    const learner = this.host.learner;
    const input = traceInput(t);
    const x = learner.extractor.extract(input);
    const failed = t.outcome !== 'success';
    const rated = !failed && t.feedback !== null;
    const later = rated && ratings !== undefined && t.feedbackTime !== null && t.feedbackTime > t.time;
    const entry = learner.learn(
      state,
      m,
      x,
      {
        queryClass: t.queryClass,
        failed,
        refused: t.outcome === 'refused',
        rating: rated && !later ? { score: t.feedback!, source: t.feedbackSource } : null,
        costUsd: t.costUsd,
        latencyMs: t.latencyMs,
      },
      weight,
      live,
    );
    if (later) ratings.push(t.feedbackTime!, entry, t.feedback!, t.feedbackSource);
    if (read % NAME_EVERY === 0) learner.noteNames(input);
    if (live) state.pending.set(t.id, entry);
    return true;
  }

  /**
   * Without per-trace access (a source with only sums), the per-class evidence is learned as one
   * aggregated observation per class × model and belief on the class's features (bias and class): the
   * cost as the mean dollars over the traces with a known cost, the reward as the mean over the
   * quality evidence (failures at 0, ratings weighed by source), into the window from the live sums
   * decayed per trace (the store's ArmEvidence; live learning forgets per quality observation: an
   * approximation, as aggregating is) and into the record from the undecayed ones. The counts of
   * quality observations are estimated from the weighted sums (× traces / Σw).
   */
  private async warmFromEvidence(state: State, source: EvidenceSource, range: { since?: number; until?: number }): Promise<number> {
    const learner = this.host.learner;
    const weights = learner.weights;
    const [offline, live, whole] = await Promise.all([
      source.evidence({ ...range, source: 'offline' }),
      source.evidence({ ...range, source: 'live', decay: learner.gamma }),
      learner.gamma < 1 ? source.evidence({ ...range, source: 'live' }) : null,
    ]);
    const judge = ratingWeight('judge', weights);
    const implicit = ratingWeight('implicit', weights);
    /** Σ weight and the mean of a row's quality evidence. */
    const quality = (row: ArmEvidence): { weight: number; mean: number } => {
      const failures = Math.max(0, row.weight - row.successes);
      const weight = failures + row.ratedCount + judge * row.judgeCount + implicit * row.implicitCount;
      const sum = row.ratedSum + judge * row.judgeSum + implicit * row.implicitSum;
      return { weight, mean: weight > 0 ? clamp01(sum / weight) : 0 };
    };
    const records = new Map<string, ArmEvidence>();
    for (const row of whole ?? []) records.set(`${row.queryClass}\u0000${row.model}`, row);
    let total = 0;
    const apply = (rows: readonly ArmEvidence[], prior: boolean) => {
      for (const row of rows) {
        if (!isRoutingEvidence(row.queryClass)) continue;
        const m = state.models.get(row.model);
        if (m === undefined || row.count === 0 || row.weight <= 0) continue;
        const x = learner.extractor.extract(classInput(row.queryClass));
        const f = prior ? offlineTraceWeight(this.host.priorWeight, row.count) : 1;
        if (row.costCount > 0) m.spend(x, row.costSum / row.costCount, f * row.costCount, 1);
        const q = quality(row);
        const record = prior || m.record === m.window ? undefined : records.get(`${row.queryClass}\u0000${row.model}`);
        if (record === undefined) {
          if (q.weight > 0) m.rate(x, q.mean, f * q.weight, 1);
        } else {
          const r = quality(record);
          if (q.weight > 0) m.window.add(x, q.weight, q.mean);
          if (r.weight > 0) m.record.add(x, r.weight, r.mean);
        }
        state.noteClass(row.queryClass, row.model, x, prior ? 0 : row.count);
        if (!prior) {
          const observations = Math.max(0, row.weight - row.successes) + row.ratedCount + row.judgeCount + row.implicitCount;
          state.traces += row.count;
          state.countRated(row.queryClass, row.model, Math.round((observations * row.count) / row.weight));
        }
        total += row.count;
      }
    };
    apply(offline, true);
    apply(live, false);
    return total;
  }
}
