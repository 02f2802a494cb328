import type { Logger } from 'pino';
import type { Services } from '../pipeline/services.js';
import { DEFAULT_SOURCE_WEIGHTS, resolveApiKey, type Config } from '../core/config.js';
import { featureTextChars } from '../routing/features.js';
import { createPolicy } from '../routing/registry.js';
import type { ModelInfo, RouterPolicy } from '../routing/types.js';
import { createTraceStore } from '../traces/factory.js';
import type { Endpoint } from '../traces/trace-columns.js';
import type { TraceStore } from '../traces/types.js';
import { ConcurrencyCaps } from '../access/concurrency.js';
import { FailedAuthThrottle } from '../access/failed-auth.js';
import { KeyRing } from '../access/keys.js';
import { RateLimiter } from '../access/rate-limit.js';
import type { Limiter } from '../access/shared-rate-limit.js';
import { UpstreamHealth } from '../upstream/health.js';
import { SizeLimits } from '../routing/size-limits.js';
import { createUpstreams } from '../upstream/upstream.js';
import { createLogger } from '../core/logger.js';
import { GatewayMetrics } from '../core/metrics.js';
import { Judge } from '../judge/judge.js';
import { Shadow } from '../judge/shadow.js';
import { ImplicitFeedback } from '../signals/implicit-feedback.js';
import { StickySessions } from '../pipeline/sticky-sessions.js';

/** Everything a request needs, built once from the config and shared by the HTTP handlers. */
export type Gateway = Services;

export interface GatewayOptions {
  store?: TraceStore;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** The clock of the sticky sessions' expiry (default Date.now; tests move it). */
  clock?: () => number;
}

export function modelInfos(config: Config): ModelInfo[] {
  return Object.entries(config.models).map(([key, m]) => ({
    key,
    sizeB: m.sizeB,
    routed: m.routed,
    inputCostPerMTok: m.inputCostPerMTok,
    outputCostPerMTok: m.outputCostPerMTok,
  }));
}

export function createRouterPolicy(config: Config, store: TraceStore | undefined): RouterPolicy {
  const r = config.router;
  return createPolicy(r.policy, {
    models: modelInfos(config),
    defaultModel: r.defaultModel,
    fallbackModel: r.fallbackModel,
    minSamples: r.minSamples,
    costWeight: r.costWeight,
    latencyWeight: r.latencyWeight,
    halfLife: r.halfLife,
    seed: r.seed,
    source: store,
    priorWeight: r.priorWeight,
    sourceWeights: { judge: r.judge?.weight ?? DEFAULT_SOURCE_WEIGHTS.judge, implicit: r.implicit === false ? 0 : r.implicit.weight },
    textChars: featureTextChars(config.traces.storePrompts, config.traces.truncateChars),
  });
}

/** Opens the store, builds the policy and warms it from the traces already recorded. */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logging.level);
  const store = options.store ?? (await createTraceStore(config.database, { logger }));
  const policy = createRouterPolicy(config, store);
  const metrics = new GatewayMetrics();
  metrics.trackSpool(() => store.spoolDepth());
  try {
    const summary = await policy.updateFromTraces();
    metrics.policyUpdated();
    logger.info({ policy: policy.name, summary }, 'routing policy loaded from traces');
  } catch (err) {
    if (!options.store) await store.close().catch(() => {});
    throw err;
  }
  const { redisUrl, redisTimeoutMs, redisKeyPrefix } = config.limits;
  // ioredis is loaded only when configured.
  const limiter: Limiter = redisUrl
    ? new (await import('../access/shared-rate-limit.js')).RedisRateLimiter({ url: redisUrl, timeoutMs: redisTimeoutMs, keyPrefix: redisKeyPrefix, logger })
    : new RateLimiter();
  // The fleet's limits from the first request: Redis gets a moment to connect (it is not waited for longer).
  await limiter.ready?.(1000);
  const gw: Gateway = {
    config,
    store,
    policy,
    upstreams: createUpstreams(config.models, options.env),
    keys: new KeyRing(config.auth),
    limiter,
    concurrency: new ConcurrencyCaps(),
    failedAuth: new FailedAuthThrottle(config.limits.failedAuthPerMinute),
    health: new UpstreamHealth({
      failures: config.router.circuitBreaker.failures,
      cooldownMs: config.router.circuitBreaker.cooldownSeconds * 1000,
    }),
    sizeLimits: new SizeLimits(),
    modelKeys: Object.keys(config.models),
    routedFor: routedKeysByEndpoint(config),
    judge: null,
    shadow: null,
    implicit: null,
    sticky: null,
    logger,
    inflight: 0,
    metrics,
  };
  const keyless = Object.entries(config.models).filter(([, m]) => m.apiKeyEnv !== undefined && resolveApiKey(m, options.env) === undefined);
  if (keyless.length > 0) {
    logger.warn(
      { models: keyless.map(([k]) => k) },
      `no provider key for ${keyless.map(([k, m]) => `${k} (${m.apiKeyEnv} is unset)`).join(', ')}: their upstreams will refuse requests`,
    );
  }
  if (config.auth.clientKeys.length > 0 && config.auth.adminKey === undefined) {
    logger.warn(
      {},
      'auth.clientKeys without auth.adminKey: /stats, /metrics and /dashboard/data answer 403 (admin_key_required) until an admin key is configured (tracegate keys add NAME --admin)',
    );
  }
  const { judge, shadow, implicit, sticky } = config.router;
  if (implicit !== false) gw.implicit = new ImplicitFeedback(gw, implicit.windowSeconds);
  if (sticky !== false) {
    // With a shared store, another instance may move a conversation: a session is read again after a sync's interval.
    const recheckMs = store.shared && config.router.syncIntervalMs > 0 ? config.router.syncIntervalMs : Infinity;
    gw.sticky = new StickySessions(gw, { ...sticky, recheckMs }, options.clock);
  }
  if (judge !== undefined) {
    const priced = (key: string) => config.models[key]!.inputCostPerMTok > 0 || config.models[key]!.outputCostPerMTok > 0;
    if (!priced(judge.model)) {
      logger.warn(
        { model: judge.model },
        `router.judge.model "${judge.model}" has no price (models.${judge.model}.inputCostPerMTok / outputCostPerMTok): its calls cost $0 to router.judge.dailyBudgetUsd, so only maxPerMinute bounds them`,
      );
    }
    gw.judge = new Judge(gw, judge);
    if (shadow !== undefined) gw.shadow = new Shadow(gw, shadow, gw.judge);
  }
  return gw;
}

export async function closeGateway(gw: Gateway): Promise<void> {
  // The background calls first (the shadow queues for the judge): they still record their traces.
  await gw.shadow?.close();
  await gw.judge?.close();
  gw.sticky?.close();
  await Promise.allSettled([...gw.upstreams.values()].map((u) => u.close()));
  await gw.limiter.close?.();
  await gw.store.close();
}

/** `Services.routedFor`: per API, the routed models whose `endpoints` list it, in config order (computed once). */
export function routedKeysByEndpoint(config: Pick<Config, 'models'>): (endpoint: Endpoint) => readonly string[] {
  const routed = (endpoint: Endpoint) => Object.keys(config.models).filter((k) => config.models[k]!.routed && config.models[k]!.endpoints.includes(endpoint));
  const byEndpoint: Record<Endpoint, readonly string[]> = { chat: routed('chat'), responses: routed('responses'), embeddings: routed('embeddings') };
  return (endpoint) => byEndpoint[endpoint];
}
