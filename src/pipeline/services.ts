import type { Logger } from 'pino';
import type { ConcurrencyCaps } from '../access/concurrency.js';
import type { FailedAuthThrottle } from '../access/failed-auth.js';
import type { KeyRing } from '../access/keys.js';
import type { Limiter } from '../access/shared-rate-limit.js';
import type { Config } from '../core/config.js';
import type { GatewayMetrics } from '../core/metrics.js';
import type { Judge } from '../judge/judge.js';
import type { Shadow } from '../judge/shadow.js';
import type { SizeLimits } from '../routing/size-limits.js';
import type { RouterPolicy } from '../routing/types.js';
import type { ImplicitFeedback } from '../signals/implicit-feedback.js';
import type { Endpoint } from '../traces/trace-columns.js';
import type { TraceStore } from '../traces/types.js';
import type { UpstreamHealth } from '../upstream/health.js';
import type { Upstream } from '../upstream/upstream.js';
import type { StickySessions } from './sticky-sessions.js';

/**
 * What the gateway is made of, built once at start from the config (src/app/gateway.ts). A
 * handler or step takes the few it uses: `Pick<Services, 'store' | 'policy'>`.
 */
export interface Services {
  config: Config;
  store: TraceStore;
  policy: RouterPolicy;
  upstreams: Map<string, Upstream>;
  health: UpstreamHealth;
  /** The smallest request each model refused as too big (routing leaves it out of one that big). */
  sizeLimits: SizeLimits;
  /** Client and admin keys (hashed), and the per-caller request limits. */
  keys: KeyRing;
  /** In memory, or shared by the fleet through Redis (`limits.redisUrl`). */
  limiter: Limiter;
  /** Chat completions in flight per caller (`limits.maxConcurrentPerKey`, a key's `maxConcurrent`). */
  concurrency: ConcurrencyCaps;
  /** Wrong keys per client address (`limits.failedAuthPerMinute`). */
  failedAuth: FailedAuthThrottle;
  /** Model keys in config order. */
  modelKeys: string[];
  /**
   * The keys of the models `auto` may use for an API: `routed` not false and `endpoints` listing it,
   * in config order.
   */
  routedFor(endpoint: Endpoint): readonly string[];
  /** Grades sampled answers in the background (`router.judge`; null without one). */
  judge: Judge | null;
  /** Sends sampled routed requests to another model in the background (`router.shadow`; null without it). */
  shadow: Shadow | null;
  /** Marks a regenerated answer with implicit feedback 0 (`router.implicit`; null when off). */
  implicit: ImplicitFeedback | null;
  /** Conversations that stay on one model (`router.sticky`; null when off). */
  sticky: StickySessions | null;
  logger: Logger;
  /** Requests being answered now (for a graceful shutdown). */
  inflight: number;
  /** Prometheus metrics (GET /metrics), this gateway's own registry. */
  metrics: GatewayMetrics;
}
