import type { QualityEvidence, QualityEvidenceQuery } from './quality-evidence.js';
import type { TraceRecord } from './trace-columns.js';

/** What the rest of tracegate knows of the trace store: plain records and one asynchronous interface. */

/** A trace: one field per column of src/traces/trace-columns.ts, the description of a trace. */
export type { TraceRecord } from './trace-columns.js';

export type Outcome = TraceRecord['outcome'];

/** `live` for traffic, `offline` for imported evaluation results (prior evidence). */
export type TraceSource = TraceRecord['source'];

/**
 * Who gave a trace's feedback: `human` through `POST /feedback`, `offline` with imported evaluation
 * results, `judge` a model grading the answer, `implicit` a signal inferred from the client's
 * behaviour. Which may replace which: see `feedbackReplaces` (src/traces/feedback-source.ts).
 */
export type FeedbackSource = NonNullable<TraceRecord['feedbackSource']>;

export interface TimeRange {
  /** Epoch milliseconds, inclusive. */
  since?: number;
  /** Epoch milliseconds, exclusive. */
  until?: number;
}

/**
 * The evidence for one query class × model ("arm"), summed in SQL.
 * With `decay` γ, every sum weighs a trace by γ^k, k = the number of newer traces of the same arm;
 * `count` stays the raw number of traces.
 */
export interface ArmEvidence {
  queryClass: string;
  model: string;
  count: number;
  /** Σw */
  weight: number;
  /** Σw over successful traces. */
  successes: number;
  /** Σw·q, q = 0 for a failure, else the feedback if any, else 1. */
  quality: number;
  /** Σw over traces with feedback, and Σw·feedback. */
  feedbackCount: number;
  feedbackSum: number;
  /**
   * Σw over successful traces whose feedback is a person's (source `human` or `offline`, or none
   * recorded), and Σw·feedback over them.
   */
  ratedCount: number;
  ratedSum: number;
  /** Σw over successful traces whose feedback is a judge's, and Σw·feedback over them. */
  judgeCount: number;
  judgeSum: number;
  /** Σw over successful traces whose feedback is `implicit`, and Σw·feedback over them. */
  implicitCount: number;
  implicitSum: number;
  /** Σw·dollars over traces whose cost is known, and Σw over those. */
  costSum: number;
  costCount: number;
  /** Σw·latency in ms. */
  latencySumMs: number;
  lastTime: number;
}

export interface EvidenceQuery extends TimeRange {
  /** Per-arm discount γ in (0, 1]; 1 or undefined = plain sums. */
  decay?: number;
  /** Only the newest N traces (over all arms), as the original's `list_traces(limit)` did. */
  maxTraces?: number;
  /** Only traces of this source (what `purge` folded away counts as `live`). */
  source?: TraceSource;
}

/** What `exportTraces` reads: a time range, narrowed to one source and to the newest N traces. */
export interface ExportQuery extends TimeRange {
  source?: TraceSource;
  /** Only the newest N traces of the range (and source); still yielded oldest first. */
  newest?: number;
}

/** The newest traces of each arm with their age in that arm (0 = newest), so a policy can weigh late feedback. */
export interface RecentArmTrace {
  id: string;
  queryClass: string;
  model: string;
  age: number;
  /** 0 for a failure, else the feedback if any, else 1 (the `learned` port's quality). */
  quality: number;
  /** The attempt failed (its quality is 0 whatever feedback says). */
  failed: boolean;
  /** Its feedback and who gave it (null: not rated). */
  feedback: number | null;
  feedbackSource: FeedbackSource | null;
}

export interface ClassModelStats {
  queryClass: string;
  model: string;
  count: number;
  successes: number;
  successRate: number;
  feedbackCount: number;
  meanFeedback: number | null;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** One gateway instance's share of the traces (several instances can share one store). */
export interface InstanceStats {
  /** The instance's `instanceId` (null for traces recorded without one). */
  instanceId: string | null;
  count: number;
  successes: number;
  feedbackCount: number;
  costUsd: number;
  /** Epoch ms of its newest trace. */
  lastTime: number;
}

/** The traces of one class × model whose feedback came from one source. */
export interface FeedbackSourceCount {
  queryClass: string;
  model: string;
  /** Who gave the feedback; feedback stored without a source counts as `human`. */
  source: FeedbackSource;
  count: number;
}

export interface StatsSummary {
  totalTraces: number;
  byClassModel: ClassModelStats[];
  /** Per gateway instance, in order of instance id (nulls first). */
  byInstance: InstanceStats[];
  /** Traces with feedback per class × model × source, in order of class, model and source (groups without any left out). */
  feedbackBySource: FeedbackSourceCount[];
}

/** Traces per time bucket × query class × model (for the dashboard's traffic chart). */
export interface TrafficQuery extends TimeRange {
  /** Bucket width in milliseconds; a bucket starts at a multiple of it (epoch ms). */
  bucketMs: number;
}

export interface TrafficBucket {
  /** Epoch milliseconds: floor(time / bucketMs) × bucketMs. */
  start: number;
  queryClass: string;
  model: string;
  count: number;
  successes: number;
}

export interface FeedbackUpdate {
  score: number;
  comment: string | null;
  time: number;
  source: FeedbackSource;
}

export interface FeedbackResult {
  /**
   * False when the trace's feedback came from a source this one may not replace (see
   * `feedbackReplaces`), or the trace is a `refused` attempt (no answer to rate): nothing was
   * stored, and `trace` is the trace as it is.
   */
  applied: boolean;
  trace: TraceRecord;
  /** The feedback the trace had before this call (null if none). */
  previous: number | null;
}

/** Feedback another gateway process committed to a shared store (see TraceStore.onFeedback). */
export interface FeedbackEvent {
  traceId: string;
  queryClass: string;
  model: string;
  outcome: Outcome;
  score: number;
  /** The trace's feedback before this one. */
  previous: number | null;
  source: FeedbackSource;
}

export interface ImportResult {
  /** Traces added. */
  inserted: number;
  /** Traces not added because their id was already in the store (or earlier in the same input). */
  skipped: number;
}

/** What `/health` and `/metrics` say about the store. */
export interface StoreHealth {
  /**
   * `ok`: traces reach the database. `degraded`: the database cannot be reached (or has just come
   * back and the spool is still being written to it); traces wait in the local spool meanwhile and
   * requests are still answered.
   */
  status: 'ok' | 'degraded';
  /** Traces waiting in the local spool (always 0 for a store without one). */
  spoolDepth: number;
  /** Why the store is degraded. */
  error?: string;
}

/** A conversation's model (`router.sticky`), as the store keeps it (see the `sticky_sessions` table). */
export interface StickySession {
  modelKey: string;
  /** Epoch ms: the session is forgotten from then on. */
  expiresAt: number;
}

export interface TraceStore {
  /**
   * True when other gateway processes may write to this store too (a shared database): each
   * instance then folds the others' traces into its policy every `router.syncIntervalMs`.
   */
  readonly shared: boolean;
  /** Resolves once the trace is durably committed. */
  insert(trace: TraceRecord): Promise<void>;
  get(id: string): Promise<TraceRecord | undefined>;
  /**
   * The model key of the trace whose `response_id` is `responseId` (the model that made that
   * Responses API answer, and holds its state); the newest when several have it; undefined when
   * none has. Finds a trace still being written.
   */
  modelOfResponse(responseId: string): Promise<string | undefined>;
  /**
   * Stores feedback on a trace, unless the trace's feedback is from a source this update's may not
   * replace (`feedbackReplaces`; then `applied` is false and nothing changes), checked and written
   * atomically; undefined if there is no such trace, or when `owner` is given and the trace was
   * made by another client key.
   */
  setFeedback(id: string, update: FeedbackUpdate, owner?: string | null): Promise<FeedbackResult | undefined>;
  /**
   * A shared store may push the feedback other processes commit to it, as they commit (so the
   * instance that answered learns from it before its next sync); returns what stops the listener.
   */
  onFeedback?(listener: (event: FeedbackEvent) => void): () => void;
  /** Evidence per arm, including what `purge` folded away (unless `since` or `maxTraces` narrows it). */
  evidence(query?: EvidenceQuery): Promise<ArmEvidence[]>;
  /** Deletes the live traces from before `before` (epoch ms), keeping their sums as evidence. */
  purge(before: number): Promise<{ deleted: number }>;
  /** Deletes every offline trace (imported evaluation results), keeping nothing of them. */
  purgeOffline(): Promise<{ deleted: number }>;
  /** The newest live traces of each arm. */
  recentByArm(perArm: number): Promise<RecentArmTrace[]>;
  /** Quality evidence per arm (failures and ratings by source), including what `purge` folded away unless a range narrows it. */
  qualityEvidence(query?: QualityEvidenceQuery): Promise<QualityEvidence[]>;
  stats(range?: TimeRange): Promise<StatsSummary>;
  recent(limit: number): Promise<TraceRecord[]>;
  /** Counts grouped by time bucket, query class and model, in SQL; in order of bucket, class, model. */
  traffic(query: TrafficQuery): Promise<TrafficBucket[]>;
  list(range: TimeRange & { limit?: number }): Promise<TraceRecord[]>;
  count(): Promise<number>;
  /** Every trace in the range, in the order recorded, read a page at a time (never the whole table at once). */
  exportTraces(range?: ExportQuery): AsyncIterable<TraceRecord>;
  /**
   * Adds traces (another instance's export, say) all or nothing: if `traces` throws or the store
   * fails, nothing is added. Ids already present are skipped. They are recorded after the traces
   * already in the store, in the order given.
   */
  importTraces(traces: AsyncIterable<TraceRecord> | Iterable<TraceRecord>): Promise<ImportResult>;
  /**
   * The model of a conversation (`router.sticky`) by its session key, unless it expired at `now`
   * (epoch ms) or is not known. A shared store that cannot be reached answers undefined.
   */
  stickySession(session: string, now: number): Promise<StickySession | undefined>;
  /**
   * Sets (or moves, or extends) a conversation's model; resolves once committed. A shared store
   * that cannot be reached drops it (the instance's own memory still has it).
   */
  setStickySession(session: string, modelKey: string, expiresAt: number): Promise<void>;
  /** Deletes the sessions that expired before `now` (epoch ms). */
  purgeStickySessions(now: number): Promise<{ deleted: number }>;
  /** Throws if the store cannot be used. */
  ping(): Promise<void>;
  /** `degraded` while traces go to a local spool instead of the database; throws if the store cannot be used at all. */
  health(): Promise<StoreHealth>;
  /** Traces waiting in the local spool now (cheap, synchronous: for the metrics). */
  spoolDepth(): number;
  close(): Promise<void>;
}

