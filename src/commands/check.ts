import { InvalidArgumentError, type Command } from 'commander';
import { request } from 'undici';
import { resolveApiKey, type Config, type ModelConfig } from '../core/config.js';
import { readConfig } from './options.js';

/** How long one check may take (connect, headers and body). */
export const CHECK_TIMEOUT_MS = 5000;

export interface ModelCheck {
  key: string;
  ok: boolean;
  /** One line: the model, then what was found (reachable, key accepted, model listed, base URL shape). */
  line: string;
}

interface Answer {
  status: number;
  body: string;
}

async function call(url: string, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, timeoutMs: number): Promise<Answer> {
  const res = await request(url, {
    method: init.method,
    headers: init.headers,
    body: init.body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

/** The upstream's own message in an OpenAI-shaped error, shortened; else nothing. */
function upstreamMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? `: ${message.slice(0, 160)}` : '';
  } catch {
    return '';
  }
}

/** A base URL whose path has no /v1 (OpenAI-compatible servers serve under it). */
function lacksV1(baseURL: string): boolean {
  return !/\/v1(\/|$)/.test(new URL(baseURL).pathname);
}

/** What one answer says is wrong, or undefined when it is a 2xx. */
function problemOf(answer: Answer, m: ModelConfig, path: string): string | undefined {
  if (answer.status === 401 || answer.status === 403) return `key not accepted (${answer.status} from ${path}${upstreamMessage(answer.body)})`;
  if (answer.status === 404 && lacksV1(m.baseURL)) {
    return `baseURL ${m.baseURL} answers 404 at ${path}: it has no /v1 (OpenAI-compatible servers usually serve under ${m.baseURL.replace(/\/$/, '')}/v1)`;
  }
  if (answer.status < 200 || answer.status >= 300) return `${path} answered ${answer.status}${upstreamMessage(answer.body)}`;
  return undefined;
}

async function checkOne(key: string, m: ModelConfig, env: NodeJS.ProcessEnv, probe: boolean, timeoutMs: number): Promise<ModelCheck> {
  const name = `${key} (${m.model} at ${m.baseURL})`;
  const fail = (what: string): ModelCheck => ({ key, ok: false, line: `FAIL ${name}: ${what}` });
  const apiKey = resolveApiKey(m, env);
  if (m.apiKeyEnv !== undefined && m.apiKey === undefined && apiKey === undefined) return fail(`no key: ${m.apiKeyEnv} is not set`);
  const headers: Record<string, string> = { ...m.headers, accept: 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
  const base = m.baseURL.replace(/\/$/, '');
  const path = probe ? '/chat/completions' : '/models';
  let answer: Answer;
  try {
    answer = probe
      ? await call(
          `${base}${path}`,
          {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ model: m.model, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1 }),
          },
          timeoutMs,
        )
      : await call(`${base}${path}`, { method: 'GET', headers }, timeoutMs);
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code;
    return fail(`not reachable (${e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (code ?? e.message)})`);
  }
  const problem = problemOf(answer, m, path);
  if (problem !== undefined) return fail(`reachable; ${problem}`);
  if (probe) return { key, ok: true, line: `ok   ${name}: reachable, key accepted, a one-token completion answered` };
  let ids: string[] | undefined;
  try {
    const data = (JSON.parse(answer.body) as { data?: { id?: unknown }[] }).data;
    if (Array.isArray(data)) ids = data.map((d) => d.id).filter((id): id is string => typeof id === 'string');
  } catch {
    ids = undefined;
  }
  if (ids === undefined) return fail('reachable, key accepted; /models is not an OpenAI model list (try --probe)');
  if (ids.length === 0) return { key, ok: true, line: `ok   ${name}: reachable, key accepted; /models lists no models, so the name is not checked (try --probe)` };
  if (!ids.includes(m.model)) {
    const some = ids.slice(0, 8).join(', ');
    return fail(`reachable, key accepted; model name "${m.model}" is not in /models (${ids.length} listed: ${some}${ids.length > 8 ? ', …' : ''})`);
  }
  return { key, ok: true, line: `ok   ${name}: reachable, key accepted, model listed` };
}

/**
 * Checks every configured model's upstream at once: reachable, key accepted (401/403: not), model
 * name in its /models list, and a base URL without /v1 that answers 404 named. With `probe`, a
 * one-token chat completion instead of /models. In the config's order.
 */
export async function checkModels(
  config: Pick<Config, 'models'>,
  options: { probe?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ModelCheck[]> {
  const env = options.env ?? process.env;
  return Promise.all(
    Object.entries(config.models).map(([key, m]) => checkOne(key, m, env, options.probe ?? false, options.timeoutMs ?? CHECK_TIMEOUT_MS)),
  );
}

async function checkCommand(flags: { config: string; probe?: boolean; timeout?: number }): Promise<void> {
  const config = readConfig(flags.config);
  const results = await checkModels(config, { probe: flags.probe, timeoutMs: flags.timeout });
  for (const r of results) process.stdout.write(`${r.line}\n`);
  const failed = results.filter((r) => !r.ok).length;
  if (failed > 0) {
    process.stderr.write(`tracegate check: ${failed} of ${results.length} model${results.length === 1 ? '' : 's'} failed\n`);
    process.exitCode = 1;
  }
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number of milliseconds');
  return n;
}

/** `tracegate check --config FILE [--probe]`: one line per configured model; exit code 1 when any fails. */
export function withCheckCommand(program: Command): Command {
  program
    .command('check')
    .description("check every configured model's upstream: reachable, key accepted, model name known, base URL shape (one line per model)")
    .requiredOption('-c, --config <file>', 'path to the JSON config file')
    .option('--probe', 'send a one-token chat completion instead of reading /models (for upstreams without /models)')
    .option('--timeout <ms>', `how long each check may take (default ${CHECK_TIMEOUT_MS})`, milliseconds)
    .action(checkCommand);
  return program;
}
