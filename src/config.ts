import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

/** The zod schema is the one source of the config's types and defaults. */

const modelSchema = z
  .object({
    baseURL: z.url({ protocol: /^https?$/ }),
    model: z.string().min(1),
    apiKeyEnv: z.string().min(1).optional(),
    apiKey: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().default(120_000),
    inputCostPerMTok: z.number().nonnegative().default(0),
    outputCostPerMTok: z.number().nonnegative().default(0),
    /** Parameters in billions; used by the `heuristic` policy to find the smallest and largest model. */
    sizeB: z.number().positive().optional(),
    /** Extra headers sent to this upstream (e.g. an organization id). */
    headers: z.record(z.string(), z.string()).default({}),
    /** Most concurrent connections to this upstream's origin. */
    connections: z.number().int().positive().default(128),
    /** Most requests in flight to this model at once (unset = no limit): routing skips a full model, a pinned request gets a 429. */
    maxConcurrent: z.number().int().positive().optional(),
  })
  .strict();

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    bodyLimitBytes: z.number().int().positive().default(10 * 1024 * 1024),
    /** How long SIGTERM waits for in-flight requests before closing anyway. */
    shutdownTimeoutMs: z.number().int().nonnegative().default(10_000),
  })
  .strict();

const databaseSchema = z
  .object({
    path: z.string().min(1).default('./data/traces.db'),
  })
  .strict();

const routerSchema = z
  .object({
    autoModel: z.string().min(1).default('auto'),
    policy: z.string().min(1).default('adaptive'),
    defaultModel: z.string().min(1).optional(),
    fallbackModel: z.string().min(1).optional(),
    minSamples: z.number().int().nonnegative().default(5),
    /** Most upstream attempts for one routed request (the first try plus failovers). */
    maxAttempts: z.number().int().min(1).default(2),
    /** Reward trade-off: utility = quality − costWeight × dollars − latencyWeight × seconds. */
    costWeight: z.number().nonnegative().default(0),
    latencyWeight: z.number().nonnegative().default(0),
    /** Forgetting: an observation's weight halves after this many newer observations of the same class and model (0 = never forget). */
    halfLife: z.number().nonnegative().default(50),
    /** Recompute the policy from the trace store every N seconds (0 = only at boot and on `tracegate update`). */
    updateIntervalSeconds: z.number().nonnegative().default(0),
    /** Take a model out of routing after this many consecutive failures, for a cooldown (failures 0 = never). */
    circuitBreaker: z
      .object({
        failures: z.number().int().nonnegative().default(3),
        cooldownSeconds: z.number().positive().default(30),
      })
      .strict()
      .default({ failures: 3, cooldownSeconds: 30 }),
    /** Random seed for the policy's exploration (unset = random). */
    seed: z.number().int().optional(),
  })
  .strict();

const tracesSchema = z
  .object({
    /** How much of the last user message a trace keeps. */
    storePrompts: z.enum(['full', 'truncated', 'none']).default('truncated'),
    truncateChars: z.number().int().positive().default(200),
  })
  .strict();

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/i, 'must be a SHA-256 hex digest (64 hex characters)');

const clientKeySchema = z
  .object({
    name: z.string().min(1).max(100),
    sha256: sha256Hex,
    /** This key's own requests-per-minute limit (overrides limits.requestsPerMinute). */
    requestsPerMinute: z.number().int().positive().optional(),
  })
  .strict();

const authSchema = z
  .object({
    /** Keys clients send as `Authorization: Bearer <key>`, stored as SHA-256 hashes (`tracegate keys add NAME`). */
    clientKeys: z.array(clientKeySchema).default([]),
    /** The key for /stats, /dashboard and /metrics (`tracegate keys add NAME --admin`). */
    adminKey: z.object({ sha256: sha256Hex }).strict().optional(),
    /** Serve without client keys on an address other than loopback. */
    allowUnauthenticated: z.boolean().default(false),
  })
  .strict();

const limitsSchema = z
  .object({
    /** Requests per minute per client key (per client address without keys); 0 = no limit. */
    requestsPerMinute: z.number().int().nonnegative().default(0),
    /** How long a client may take to send its request headers, and its whole request. */
    headersTimeoutMs: z.number().int().positive().default(10_000),
    requestTimeoutMs: z.number().int().positive().default(60_000),
  })
  .strict();

const loggingSchema = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export const configSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    database: databaseSchema.default(databaseSchema.parse({})),
    models: z
      .record(z.string().min(1), modelSchema)
      .refine((m) => Object.keys(m).length > 0, 'at least one model must be configured'),
    router: routerSchema.default(routerSchema.parse({})),
    traces: tracesSchema.default(tracesSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    limits: limitsSchema.default(limitsSchema.parse({})),
    logging: loggingSchema.default(loggingSchema.parse({})),
    /** This gateway's name on its traces (several instances can share one store). */
    instanceId: z.string().min(1).max(200).default(`${hostname()}-${process.pid}`),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const keys = Object.keys(cfg.models);
    for (const field of ['defaultModel', 'fallbackModel'] as const) {
      const value = cfg.router[field];
      if (value !== undefined && !keys.includes(value)) {
        ctx.addIssue({
          code: 'custom',
          path: ['router', field],
          message: `"${value}" is not a configured model (configured: ${keys.join(', ')})`,
        });
      }
    }
    const names = cfg.auth.clientKeys.map((k) => k.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'clientKeys'], message: `two client keys are named "${duplicate}"` });
    }
    if (cfg.auth.clientKeys.length === 0 && !cfg.auth.allowUnauthenticated && !isLoopback(cfg.server.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'allowUnauthenticated'],
        message: `without auth.clientKeys the gateway only binds to a loopback address; to serve ${cfg.server.host} add client keys (tracegate keys add NAME) or set auth.allowUnauthenticated: true`,
      });
    }
    if (keys.includes(cfg.router.autoModel)) {
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'autoModel'],
        message: `"${cfg.router.autoModel}" is also a model key; the auto model needs a name of its own`,
      });
    }
  });

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

export type Config = z.infer<typeof configSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type RouterConfig = z.infer<typeof routerSchema>;

export class ConfigError extends Error {
  readonly code = 'TRACEGATE_CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      return `  ${path}: ${issue.message}`;
    })
    .join('\n');
}

export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid ${source}:\n${describeIssues(result.error)}`);
  }
  return result.data;
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, `config file ${file}`);
}

/** The API key of an upstream: `apiKey`, else the environment variable named by `apiKeyEnv`. */
export function resolveApiKey(model: ModelConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (model.apiKey) return model.apiKey;
  if (model.apiKeyEnv) return env[model.apiKeyEnv] || undefined;
  return undefined;
}
