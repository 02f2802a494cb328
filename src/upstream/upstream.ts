import { Pool } from 'undici';
import { resolveApiKey, type ModelConfig } from '../core/config.js';
import { Redactor, secretsOf } from './redact.js';

/** One configured upstream model: where it lives, how to call it, what it costs. Knows nothing of routing. */
export class Upstream {
  readonly origin: string;
  /** Path of the chat completions endpoint, e.g. `/v1/chat/completions`. */
  readonly chatPath: string;
  /** Path of the embeddings endpoint, e.g. `/v1/embeddings`. */
  readonly embeddingsPath: string;
  /** Path of the Responses API endpoint, e.g. `/v1/responses`. */
  readonly responsesPath: string;
  readonly model: string;
  readonly timeoutMs: number;
  /** Most bytes of an answer read whole (a non-streamed answer, a JSON answer to a stream request). */
  readonly maxResponseBytes: number;
  /** A stream request is sent asking for usage (`stream_options.include_usage`). */
  readonly streamUsage: boolean;
  /** Scrubs the configured secrets (every model's) from what this upstream sends. */
  readonly redactor: Redactor;
  /** Most requests in flight at once (undefined: no limit), and how many there are now. */
  readonly maxConcurrent: number | undefined;
  inflight = 0;
  readonly pool: Pool;
  /** Headers sent on every call (with the API key, which therefore never leaves this object). */
  readonly headers: Record<string, string>;
  /** The same, for a request that asks for a stream. */
  readonly streamHeaders: Record<string, string>;
  private readonly inputCostPerToken: number;
  private readonly outputCostPerToken: number;

  constructor(
    readonly key: string,
    config: ModelConfig,
    env: NodeJS.ProcessEnv = process.env,
    redactor?: Redactor,
  ) {
    const url = new URL(config.baseURL);
    this.origin = url.origin;
    const base = url.pathname.replace(/\/+$/, '');
    this.chatPath = `${base}/chat/completions`;
    this.embeddingsPath = `${base}/embeddings`;
    this.responsesPath = `${base}/responses`;
    this.model = config.model;
    this.timeoutMs = config.timeoutMs;
    this.maxResponseBytes = config.maxResponseBytes;
    this.streamUsage = config.streamUsage;
    this.redactor = redactor ?? new Redactor(secretsOf({ [key]: config }, env));
    this.maxConcurrent = config.maxConcurrent;
    this.inputCostPerToken = config.inputCostPerMTok / 1e6;
    this.outputCostPerToken = config.outputCostPerMTok / 1e6;
    const apiKey = resolveApiKey(config, env);
    this.headers = {
      ...config.headers,
      'content-type': 'application/json',
      // Identity, so usage can be read from bodies without decompressing them.
      'accept-encoding': 'identity',
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    };
    this.streamHeaders = { ...this.headers, accept: 'text/event-stream' };
    this.pool = new Pool(this.origin, {
      connections: config.connections,
      connect: { timeout: Math.min(10_000, config.timeoutMs) },
      keepAliveTimeout: 10_000,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    });
  }

  hasCapacity(): boolean {
    return this.maxConcurrent === undefined || this.inflight < this.maxConcurrent;
  }

  /** Dollars for a call, or null when the token counts are unknown. */
  cost(promptTokens: number | null, completionTokens: number | null): number | null {
    if (promptTokens === null && completionTokens === null) return null;
    return (promptTokens ?? 0) * this.inputCostPerToken + (completionTokens ?? 0) * this.outputCostPerToken;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The configured upstreams; each scrubs the secrets of all of them from what it sends. */
export function createUpstreams(models: Record<string, ModelConfig>, env: NodeJS.ProcessEnv = process.env) {
  const redactor = new Redactor(secretsOf(models, env));
  const upstreams = new Map<string, Upstream>();
  for (const [key, config] of Object.entries(models)) upstreams.set(key, new Upstream(key, config, env, redactor));
  return upstreams;
}
