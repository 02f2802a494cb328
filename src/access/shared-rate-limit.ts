import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiter, type RateDecision } from './rate-limit.js';

/** Per-caller request limits: answered at once in memory, or after one round trip to Redis. */
export interface Limiter {
  take(caller: string, perMinute: number): RateDecision | Promise<RateDecision>;
  /** Resolves once the limiter is connected, or after `timeoutMs` (it then works without, meanwhile). */
  ready?(timeoutMs: number): Promise<void>;
  close?(): Promise<void>;
}

/**
 * The token bucket of `RateLimiter` (a burst of up to the per-minute figure, refilled evenly), kept
 * in Redis so that it holds for every instance of the fleet together. One EVALSHA per request: the
 * script refills, takes a token and stores the bucket atomically, on Redis's clock (TIME), so the
 * instances' clocks do not matter. The bucket expires once it would be full again.
 */
const TAKE = `
local cap = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per_ms = cap / 60000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(b[1])
local updated = tonumber(b[2])
if tokens == nil or updated == nil then
  tokens = cap
  updated = now
end
tokens = math.min(cap, tokens + math.max(0, now - updated) * per_ms)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.max(1, math.ceil((1 - tokens) / per_ms / 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / per_ms) + 1000)
return {allowed, retry}
`;
const TAKE_SHA = createHash('sha1').update(TAKE).digest('hex');

export interface RedisLimiterOptions {
  url: string;
  /** A request waits at most this long for Redis; then this instance's own limiter decides. */
  timeoutMs: number;
  keyPrefix: string;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/**
 * Request limits shared by the fleet through Redis. When Redis cannot be reached (down, slow, not
 * connected yet) a request is never refused for that: this instance's in-memory limiter decides
 * instead, as without Redis, and Redis is used again as soon as it answers.
 */
export class RedisRateLimiter implements Limiter {
  private readonly redis: Redis;
  private readonly local = new RateLimiter();
  private readonly prefix: string;
  private readonly logger: RedisLimiterOptions['logger'];
  private fallingBack = false;

  constructor(options: RedisLimiterOptions) {
    this.prefix = options.keyPrefix;
    this.logger = options.logger;
    this.redis = new Redis(options.url, {
      connectTimeout: Math.max(200, options.timeoutMs * 5),
      commandTimeout: options.timeoutMs,
      // A command while disconnected fails at once instead of waiting in a queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(2000, 100 * times),
      lazyConnect: false,
    });
    // Connection errors are reported through the fallback below; they must not end the process.
    this.redis.on('error', () => {});
    this.redis.on('ready', () => this.recovered());
  }

  take(caller: string, perMinute: number): RateDecision | Promise<RateDecision> {
    if (perMinute <= 0) return { allowed: true, retryAfterSeconds: 0 };
    if (this.redis.status !== 'ready') return this.fallback(caller, perMinute, 'not connected');
    const key = this.prefix + caller;
    return this.evaluate(key, perMinute).then(
      ([allowed, retry]) => {
        this.recovered();
        return { allowed: allowed === 1, retryAfterSeconds: retry };
      },
      (err: unknown) => this.fallback(caller, perMinute, (err as Error).message),
    );
  }

  private async evaluate(key: string, perMinute: number): Promise<[number, number]> {
    try {
      return (await this.redis.evalsha(TAKE_SHA, 1, key, perMinute)) as [number, number];
    } catch (err) {
      // First use on this Redis: the script is sent once, then known by its digest.
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return (await this.redis.eval(TAKE, 1, key, perMinute)) as [number, number];
    }
  }

  private fallback(caller: string, perMinute: number, why: string): RateDecision {
    this.down(why);
    return this.local.take(caller, perMinute);
  }

  private down(why: string): void {
    if (!this.fallingBack) {
      this.fallingBack = true;
      this.logger?.warn({ error: why }, 'Redis unreachable: request limits are this instance\'s own until it answers');
    }
  }

  private recovered(): void {
    if (this.fallingBack) {
      this.fallingBack = false;
      this.logger?.info({}, 'Redis reachable again: request limits hold for the fleet');
    }
  }

  ready(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.down(`not connected within ${timeoutMs} ms`);
        done();
      }, timeoutMs);
      this.redis.on('ready', done);
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
