import type { ArmEvidence, EvidenceQuery, Outcome, RecentArmTrace } from '../traces/types.js';

export type QueryClass = string;

/** Why a model was chosen; sent as `x-router-reason`. */
export type RouteReason =
  | 'pinned'
  | 'learned'
  | 'explore'
  | 'default'
  | 'fallback'
  | 'heuristic'
  | 'failover';

export interface RoutingContext {
  /** The last user message. */
  query: string;
  queryClass: QueryClass;
  /** Model keys the policy may choose from, in config order (already without the ones that failed). */
  available: readonly string[];
  /** 0..1, how urgent the caller says the request is (default 0.5). */
  urgency?: number;
}

export interface Decision {
  model: string;
  reason: RouteReason;
}

/** One finished upstream attempt, as the policy learns from it. */
export interface Observation {
  traceId: string;
  query: string;
  queryClass: QueryClass;
  model: string;
  outcome: Outcome;
  /** True when this attempt failed and another model answered instead. */
  failedOver?: boolean;
  latencyMs: number;
  costUsd: number | null;
  feedback: number | null;
}

export interface FeedbackObservation {
  traceId: string;
  queryClass: QueryClass;
  model: string;
  outcome: Outcome;
  score: number;
  /** The trace's feedback before this one, so a change of mind is not counted twice. */
  previous: number | null;
}

export interface ArmSnapshot {
  model: string;
  /** Estimated quality (0..1) for this class. */
  estimate: number;
  /** Standard deviation of that estimate. */
  uncertainty: number;
  /** Expected dollars per request, when known. */
  costUsd: number | null;
  /** Traces seen (raw count). */
  samples: number;
  /** Share of the class's recent decisions that chose this model. */
  share: number;
}

export interface ClassSnapshot {
  queryClass: QueryClass;
  /** What the policy would choose now without exploring. */
  choice: string;
  confidence: number;
  arms: ArmSnapshot[];
}

export interface PolicySnapshot {
  policy: string;
  classes: ClassSnapshot[];
}

export interface UpdateSummary {
  updated?: boolean;
  query_classes?: number;
  total_traces?: number;
  changes?: Record<string, { old: string; new: string }>;
  reason?: string;
  error?: string;
}

/** Where a policy reads past traces from (a TraceStore fits). */
export interface EvidenceSource {
  evidence(query?: EvidenceQuery): Promise<ArmEvidence[]>;
  recentByArm(perArm: number): Promise<RecentArmTrace[]>;
}

export interface RouterPolicy {
  readonly name: string;
  select(ctx: RoutingContext): Decision;
  observe(observation: Observation): void;
  observeFeedback(feedback: FeedbackObservation): void;
  /** Recompute from the trace store; the summary says what changed. */
  updateFromTraces(range?: { since?: number; until?: number }): Promise<UpdateSummary>;
  snapshot(): PolicySnapshot;
}

export interface ModelInfo {
  key: string;
  sizeB?: number;
  inputCostPerMTok: number;
  outputCostPerMTok: number;
}

export interface PolicyOptions {
  models: readonly ModelInfo[];
  defaultModel?: string;
  fallbackModel?: string;
  minSamples: number;
  costWeight: number;
  latencyWeight: number;
  halfLife: number;
  seed?: number;
  source?: EvidenceSource;
}
