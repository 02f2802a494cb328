import type { QualityEvidence, QualityEvidenceQuery } from '../traces/quality-evidence.js';
import type { ArmEvidence, EvidenceQuery, ExportQuery, FeedbackSource, Outcome, RecentArmTrace, TraceRecord } from '../traces/types.js';

import type { SourceWeights } from './prior.js';

export type QueryClass = string;

/** Why a model was chosen; sent as `x-router-reason`. */
export type RouteReason =
  | 'pinned'
  | 'learned'
  | 'explore'
  | 'default'
  | 'fallback'
  | 'heuristic'
  | 'contextual'
  | 'failover'
  /** The same model once more, after the short wait its 429 asked for (router.retryAfterMaxMs). */
  | 'retry'
  /** The model of the conversation's earlier turns (router.sticky), or for a Responses API request the model that made its `previous_response_id` (it holds the state). */
  | 'sticky';

/**
 * What is known of a request before it is routed, built once per request (src/routing/context.ts)
 * and shared by every attempt and by the observation of each attempt.
 */
export interface QueryContext {
  /** The last user message (text parts joined). */
  query: string;
  /** The system (and developer) messages' text, joined; '' when there is none. */
  system: string;
  /** Messages in the request. */
  messageCount: number;
  /** `tools` (or legacy `functions`) given. */
  tools: boolean;
  /** An image part in any message. */
  images: boolean;
  /** `response_format` given. */
  responseFormat: boolean;
  /** The rule's name (router.classes) or the built-in class. */
  queryClass: QueryClass;
}

export interface RoutingContext {
  /** The last user message. */
  query: string;
  queryClass: QueryClass;
  /** Model keys the policy may choose from, in config order (already without the ones that failed). */
  available: readonly string[];
  /** The whole request's context (the same object for every attempt); without it, only `query` is known. */
  context?: QueryContext;
  /** Serve the best estimate, no exploration: a shadow call explores for this request. */
  exploit?: boolean;
  /**
   * The judge will grade this request's answer (router.judge sampled it as it started): an
   * exploring pick here is sure to bring quality evidence back. Ignored with `exploit`.
   */
  graded?: boolean;
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
  latencyMs: number;
  costUsd: number | null;
  feedback: number | null;
  /** Who gave `feedback` (default: a human). */
  feedbackSource?: FeedbackSource;
  /** A shadow call's answer (never seen by the client): evidence, but not one of the served answers whose ratings set how often to explore. */
  shadow?: boolean;
  /** The request's context, as given to select() (absent: only `query` and `queryClass` are known). */
  context?: QueryContext;
}

export interface FeedbackObservation {
  traceId: string;
  queryClass: QueryClass;
  model: string;
  outcome: Outcome;
  score: number;
  /** The trace's feedback before this one, so a change of mind is not counted twice. */
  previous: number | null;
  /** Who gave it. */
  source: FeedbackSource;
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
  /**
   * The quality evidence behind the estimate, raw count: ratings (`adaptive`), or ratings and failures
   * (`contextual`, which counts a failure as quality 0); absent for policies that count every trace.
   */
  rated?: number;
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

/** One feature of a per-query policy and its weight in a model's predicted reward. */
export interface FeatureWeight {
  feature: string;
  weight: number;
}

export interface PolicySnapshot {
  policy: string;
  classes: ClassSnapshot[];
  /** Per-query policies: per model, the features that weigh most in its predicted reward. */
  features?: Record<string, FeatureWeight[]>;
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
  /** Quality evidence per arm: failures and ratings by source (the learning policies' quality). */
  qualityEvidence(query?: QualityEvidenceQuery): Promise<QualityEvidence[]>;
  /** The traces themselves, oldest first (a per-query policy rebuilds from their text). */
  exportTraces?(query?: ExportQuery): AsyncIterable<TraceRecord>;
  /** How many traces are stored (a per-query policy reads only the new ones between rebuilds). */
  count?(): Promise<number>;
}

export interface RouterPolicy {
  readonly name: string;
  select(ctx: RoutingContext): Decision;
  observe(observation: Observation): void;
  observeFeedback(feedback: FeedbackObservation): void;
  /** Recompute from the trace store; the summary says what changed. */
  updateFromTraces(range?: { since?: number; until?: number }): Promise<UpdateSummary>;
  snapshot(): PolicySnapshot;
  /**
   * The model the policy most wants to learn about for this request, other than the served one
   * (the target of a shadow call); undefined when there is none or the policy does not explore.
   */
  shadowCandidate?(ctx: RoutingContext, served: string): string | undefined;
}

export interface ModelInfo {
  key: string;
  sizeB?: number;
  inputCostPerMTok: number;
  outputCostPerMTok: number;
  /** False for a model kept out of `auto` (models.<key>.routed): never an anchor or a default. */
  routed?: boolean;
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
  /**
   * Offline evidence (imported evaluation results) counts as at most this many observations per
   * query class × model, as a prior older than every live trace (default 50).
   */
  priorWeight?: number;
  /**
   * Characters of the last user message (and of the system prompt) that per-query features read:
   * what the trace store keeps of a prompt, so that a rebuild sees what live routing saw (default 200).
   */
  textChars?: number;
  /** How much a judge's and an implicit signal's rating count against a human's (default DEFAULT_SOURCE_WEIGHTS). */
  sourceWeights?: SourceWeights;
}
