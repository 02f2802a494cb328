import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { RESERVED_CLASSES } from './reserved-classes.js';
import { classRulesSchema } from './class-rules.js';
import { ConfigError } from './errors.js';

/** router.priorWeight's default: offline evidence counts as at most this many observations per class × model. */
export const DEFAULT_PRIOR_WEIGHT = 1000;
/** traces.truncateChars' default: the characters of a prompt kept when prompts are stored truncated. */
export const DEFAULT_TRUNCATE_CHARS = 200;
/**
 * What a judge's and an implicit signal's ratings count against a person's, by default
 * (router.judge.weight, router.implicit.weight). A judge is wrong more often than the person who
 * asked, so its score counts half; a regenerated answer is the user's own verdict and counts whole.
 */
export const DEFAULT_SOURCE_WEIGHTS = { judge: 0.5, implicit: 1 } as const;

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
    /** Most bytes of an answer read whole (a non-streamed answer, a JSON answer to a stream request); past it the attempt fails as malformed. */
    maxResponseBytes: z.number().int().positive().default(32 * 1024 * 1024),
    /** false: `model: "auto"` never reaches this model (not chosen, not failed over to); a request that names it still does. */
    routed: z.boolean().default(true),
    /**
     * true: a stream request is sent with `stream_options.include_usage`, so the upstream counts its
     * tokens; false for an upstream that rejects the option (the stream's trace then has no tokens
     * unless the client asked for usage itself).
     */
    streamUsage: z.boolean().default(true),
    /**
     * The APIs this model serves: `chat` (/v1/chat/completions), `responses` (/v1/responses),
     * `embeddings` (/v1/embeddings). Routing for an API chooses among the routed models that serve it.
     */
    endpoints: z
      .array(z.enum(['chat', 'responses', 'embeddings']))
      .min(1)
      .refine((e) => new Set(e).size === e.length, 'lists an endpoint twice')
      .default(['chat']),
  })
  .strict();

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    bodyLimitBytes: z.number().int().positive().default(10 * 1024 * 1024),
    /** Deepest nesting of arrays and objects in a chat request's JSON body; deeper → 400. */
    bodyDepthLimit: z.number().int().positive().max(10_000).default(128),
    /** How long SIGTERM waits for in-flight requests before closing anyway. */
    shutdownTimeoutMs: z.number().int().nonnegative().default(10_000),
  })
  .strict();

const databaseSchema = z
  .object({
    /** The SQLite file (the embedded store), used when no `url` is given. */
    path: z.string().min(1).default('./data/traces.db'),
    /** A PostgreSQL URL (postgres://user:password@host:port/database): a store several instances share. `DATABASE_URL` sets it too. */
    url: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    /** PostgreSQL: most connections of this instance for reads (its commits have 2 connections of their own). */
    poolSize: z.number().int().positive().default(10),
    /** PostgreSQL: the local SQLite file where traces wait while the database cannot be reached (one per instance). */
    spoolPath: z.string().min(1).default('./data/spool.db'),
    /** PostgreSQL: connecting longer than this counts as unreachable. */
    connectTimeoutMs: z.number().int().positive().default(2000),
    /** PostgreSQL: traces whose commit is not acknowledged within this go to the spool instead. */
    writeTimeoutMs: z.number().int().positive().default(5000),
    /** PostgreSQL: wait for the WAL flush before a commit counts (false: PostgreSQL flushes within ~200 ms; a crash of PostgreSQL or its machine can lose the last commits). */
    synchronousCommit: z.boolean().default(true),
    /** PostgreSQL group commit: how long a batch of traces gathers before its one INSERT, and its most rows. */
    groupCommitMs: z.number().nonnegative().max(1000).default(1),
    groupCommitMaxRows: z.number().int().positive().max(2000).default(500),
  })
  .strict();

/** A model that grades sampled answers of routed requests (src/judge/judge.ts). */
const judgeSchema = z
  .object({
    /** The model key that grades (any configured model, routed or not). */
    model: z.string().min(1),
    /** Share of routed requests whose successful answer is graded, decided as each request starts. */
    sampleRate: z.number().min(0).max(1).default(0.05),
    /** Most judge calls started in any 60 seconds; the others are dropped. */
    maxPerMinute: z.number().int().positive().default(60),
    /** Dollars of judge calls per UTC day; once spent, nothing more is graded until the next day. */
    dailyBudgetUsd: z.number().positive().default(5),
    /** The grading rubric (the judge's system prompt); the reply format is always appended. */
    prompt: z.string().min(1).optional(),
    /** How much one judge score counts in the policy against one person's rating (1 = as much). */
    weight: z.number().nonnegative().default(DEFAULT_SOURCE_WEIGHTS.judge),
    /** A judge call without its whole answer within this fails (or is retried once). */
    timeoutMs: z.number().int().positive().default(30_000),
    /** Answers waiting to be graded; when full, new ones are dropped. */
    queueSize: z.number().int().positive().default(100),
  })
  .strict();

/** Shadow exploration: a sampled routed request is also sent, in the background, to another model (src/judge/shadow.ts). */
const shadowSchema = z
  .object({
    /** Share of routed requests that get a shadow call, decided as each request starts. */
    rate: z.number().min(0).max(1).default(0.05),
    /** Dollars of shadow calls per UTC day; once spent, no shadow calls until the next day. */
    dailyBudgetUsd: z.number().positive().default(5),
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
    /**
     * An upstream 429 that asks to wait at most this long (`retry-after`, `x-ratelimit-reset-*`) is
     * waited out and the same model tried once more; a longer wait fails over (routed) or answers 429 (pinned).
     */
    retryAfterMaxMs: z.number().int().nonnegative().default(2000),
    /**
     * How long one request's attempts may go on (failovers, a 429's wait, the last resort): none
     * starts with less than a second of it left (the last failure is then the answer); one that
     * started runs to its own `timeoutMs`. The default, 5 minutes, leaves room for two attempts at
     * the default `timeoutMs`, and with one more still answers before the OpenAI SDKs' own 10-minute
     * timeout, so a client gets the gateway's error rather than its own.
     */
    deadlineMs: z.number().int().positive().default(300_000),
    /** Reward trade-off: utility = quality − costWeight × dollars − latencyWeight × seconds. */
    costWeight: z.number().nonnegative().default(0),
    latencyWeight: z.number().nonnegative().default(0),
    /**
     * The recent window: a piece of quality evidence weighs half after this many newer ones of the
     * same class and model, and a trace's cost, latency and success after this many newer traces (0 =
     * no window). The policies keep each model's whole record beside it.
     */
    halfLife: z.number().nonnegative().default(20),
    /** Recompute the policy from the trace store every N seconds (0 = only at boot and on `tracegate update`). */
    updateIntervalSeconds: z.number().nonnegative().default(0),
    /** With a shared store (PostgreSQL): fold in what the other instances traced this often, in ms, and hear their feedback as it commits (0 = neither). */
    syncIntervalMs: z.number().int().nonnegative().default(2000),
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
    /** Named query classes: rules tried in order before the built-in classifier (src/routing/rules.ts). */
    classes: classRulesSchema.default([]),
    /** Offline evidence (tracegate import --eval) counts as at most this many observations per query class × model. */
    priorWeight: z.number().nonnegative().default(DEFAULT_PRIOR_WEIGHT),
    /** A model that grades sampled answers (absent: no judge). */
    judge: judgeSchema.optional(),
    /** Shadow calls to another model on sampled routed requests, graded by the judge (needs `judge`). */
    shadow: shadowSchema.optional(),
    /**
     * Implicit feedback: the same caller sending the same conversation again (a regenerate) within
     * `windowSeconds` marks the earlier answer with implicit feedback 0, which counts `weight`
     * against a human rating (false: off).
     */
    implicit: z
      .union([
        z.literal(false),
        z
          .object({
            windowSeconds: z.number().positive().default(120),
            weight: z.number().nonnegative().default(DEFAULT_SOURCE_WEIGHTS.implicit),
          })
          .strict(),
      ], { error: 'expected false (off) or an object' })
      .default({ windowSeconds: 120, weight: DEFAULT_SOURCE_WEIGHTS.implicit }),
    /**
     * Conversations that stay on one model: the turns of a session (`x-session-id`, or
     * `metadata.session_id`, or with `inferFromMessages` a hash of its first messages) go to the model
     * that answered its last routed turn, for `ttlSeconds` after that turn, unless the model may not
     * take this one (it failed, is in cooldown or full, or the request is too big for it). At most `maxSessions` are remembered in memory (the least recently used leave
     * first); the store keeps them for a restart and the fleet. false: off.
     */
    sticky: z
      .union([
        z.literal(false),
        z
          .object({
            ttlSeconds: z.number().int().min(1).default(3600),
            inferFromMessages: z.boolean().default(false),
            maxSessions: z.number().int().positive().default(100_000),
          })
          .strict(),
      ], { error: 'expected false (off) or an object' })
      .default({ ttlSeconds: 3600, inferFromMessages: false, maxSessions: 100_000 }),
  })
  .strict();

const tracesSchema = z
  .object({
    /** How much of the last user message a trace keeps. */
    storePrompts: z.enum(['full', 'truncated', 'none']).default('truncated'),
    truncateChars: z.number().int().positive().default(DEFAULT_TRUNCATE_CHARS),
  })
  .strict();

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/i, 'must be a SHA-256 hex digest (64 hex characters)');

const clientKeySchema = z
  .object({
    name: z.string().min(1).max(100),
    sha256: sha256Hex,
    /** This key's own requests-per-minute limit (overrides limits.requestsPerMinute). */
    requestsPerMinute: z.number().int().positive().optional(),
    /** This key's own cap on chat completions in flight at once (overrides limits.maxConcurrentPerKey). */
    maxConcurrent: z.number().int().positive().optional(),
  })
  .strict();

const authSchema = z
  .object({
    /** Keys clients send as `Authorization: Bearer <key>`, stored as SHA-256 hashes (`tracegate keys add NAME`). */
    clientKeys: z.array(clientKeySchema).default([]),
    /** The key for /stats, /dashboard/data and /metrics (`tracegate keys add NAME --admin`, NAME recorded as its `name`); with client keys and none, those answer 403. */
    adminKey: z.object({ name: z.string().min(1).max(100).optional(), sha256: sha256Hex }).strict().optional(),
    /** Serve without client keys on an address other than loopback. */
    allowUnauthenticated: z.boolean().default(false),
  })
  .strict();

const limitsSchema = z
  .object({
    /** Requests per minute per client key (per client address without keys); 0 = no limit. */
    requestsPerMinute: z.number().int().nonnegative().default(0),
    /** Chat completions in flight at once per client key (per client address without keys); 0 = no cap. */
    maxConcurrentPerKey: z.number().int().nonnegative().default(0),
    /** Requests per minute with the admin key; 0 = no limit. */
    adminRequestsPerMinute: z.number().int().nonnegative().default(600),
    /** Wrong keys per minute from one client address before it gets 429s until its allowance refills; 0 = off. */
    failedAuthPerMinute: z.number().int().nonnegative().default(20),
    /** How long a client may take to send its request headers, and its whole request. */
    headersTimeoutMs: z.number().int().positive().default(10_000),
    requestTimeoutMs: z.number().int().positive().default(60_000),
    /** A client whose socket has not drained for this long (it stopped reading an answer) is cut, and its upstream call freed. */
    writeStallMs: z.number().int().positive().default(30_000),
    /** Redis (redis://host:port) holding the request limits, so they hold for the whole fleet; unset = each instance limits on its own. */
    redisUrl: z.url({ protocol: /^rediss?$/ }).optional(),
    /** Redis slower than this (or down) for a request: that request is limited by this instance alone. */
    redisTimeoutMs: z.number().int().positive().default(200),
    /** Prefix of the limit keys in Redis (several fleets can share one Redis). */
    redisKeyPrefix: z.string().default('tracegate:limit:'),
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
    const routed = keys.filter((k) => cfg.models[k]!.routed);
    if (keys.length > 0 && routed.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['models'], message: 'at least one model must be routed (every model has routed: false)' });
    }
    for (const field of ['defaultModel', 'fallbackModel'] as const) {
      const value = cfg.router[field];
      if (value !== undefined && !keys.includes(value)) {
        ctx.addIssue({
          code: 'custom',
          path: ['router', field],
          message: `"${value}" is not a configured model (configured: ${keys.join(', ')})`,
        });
      } else if (value !== undefined && !cfg.models[value]!.routed) {
        ctx.addIssue({
          code: 'custom',
          path: ['router', field],
          message: `"${value}" has routed: false, so auto requests may not use it (routed models: ${routed.join(', ')})`,
        });
      } else if (value !== undefined && !cfg.models[value]!.endpoints.includes('chat')) {
        const chat = routed.filter((k) => cfg.models[k]!.endpoints.includes('chat'));
        ctx.addIssue({
          code: 'custom',
          path: ['router', field],
          message: `"${value}" does not serve chat (models.${value}.endpoints), so auto chat requests may not use it (routed chat models: ${chat.join(', ') || 'none'})`,
        });
      }
    }
    const judge = cfg.router.judge;
    if (judge !== undefined && !keys.includes(judge.model)) {
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'judge', 'model'],
        message: `"${judge.model}" is not a configured model (configured: ${keys.join(', ')})`,
      });
    }
    cfg.router.classes.forEach((rule, index) => {
      const what = RESERVED_CLASSES.get(rule.name);
      if (what === undefined) return;
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'classes', index, 'name'],
        message: `"${rule.name}" is the class of ${what}; give the rule another name`,
      });
    });
    if (cfg.router.shadow !== undefined && judge === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'shadow'],
        message: 'shadow calls are graded by the judge: configure router.judge too',
      });
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
export type JudgeConfig = z.infer<typeof judgeSchema>;
export type ShadowConfig = z.infer<typeof shadowSchema>;

type Issue = z.core.$ZodIssue;

/**
 * An issue as the lines that name what is wrong. A value that matched no branch of a union (such as
 * `router.sticky`: false or an object) is described by the branch that looked inside it, so the line
 * names the field (`router.sticky.ttlSeconds`) rather than saying the whole value is invalid.
 */
function issueLines(issue: Issue, prefix: readonly PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    const inner = issue.errors.find((branch) => branch.some((i) => i.path.length > 0));
    if (inner !== undefined) return inner.flatMap((i) => issueLines(i, path));
  }
  return [{ path, message: issue.message }];
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .flatMap((issue) => issueLines(issue, []))
    .map(({ path, message }) => `  ${path.length > 0 ? path.map(String).join('.') : '(root)'}: ${message}`)
    .join('\n');
}

/** What validation checks names against that this module cannot know itself (the routing layer registers the policies). */
export interface KnownNames {
  /** The registered router policies: `router.policy` must be one of them. */
  policies?: readonly string[];
}

/** The schema, with `router.policy` checked against `known.policies` when given. */
function schemaFor(known: KnownNames) {
  const policies = known.policies;
  if (policies === undefined) return configSchema;
  return configSchema.superRefine((cfg, ctx) => {
    if (!policies.includes(cfg.router.policy)) {
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'policy'],
        message: `"${cfg.router.policy}" is not a router policy (known: ${policies.join(', ')})`,
      });
    }
  });
}

export function parseConfig(raw: unknown, source = 'config', known: KnownNames = {}): Config {
  const result = schemaFor(known).safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid ${source}:\n${describeIssues(result.error)}`);
  }
  return result.data;
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, known: KnownNames = {}): Config {
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
  return parseConfig(withDatabaseUrl(raw, env), `config file ${file}`, known);
}

/** `DATABASE_URL` sets `database.url` when the file gives none. */
function withDatabaseUrl(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const url = env.DATABASE_URL;
  if (!url || typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const cfg = raw as Record<string, unknown>;
  const database = cfg.database;
  if (database !== undefined && (typeof database !== 'object' || database === null || Array.isArray(database))) return raw;
  if (database !== undefined && (database as Record<string, unknown>).url !== undefined) return raw;
  return { ...cfg, database: { ...(database as Record<string, unknown> | undefined), url } };
}

/** The API key of an upstream: `apiKey`, else the environment variable named by `apiKeyEnv`. */
export function resolveApiKey(model: ModelConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (model.apiKey) return model.apiKey;
  if (model.apiKeyEnv) return env[model.apiKeyEnv] || undefined;
  return undefined;
}
