import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, parseConfig, resolveApiKey } from '../../src/core/config.js';
import { tempDir } from '../helpers/gateway.js';
import { CLI } from '../helpers/process.js';
import { ConfigError } from '../../src/core/errors.js';

const run = promisify(execFile);
const minimal = { models: { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' } } };

describe('config', () => {
  it('router.policy is checked against the policy names passed in (the config module cannot know them), each named', () => {
    const raw = { ...minimal, router: { policy: 'adaptve' } };
    expect(() => parseConfig(raw, 'config', { policies: ['learned', 'adaptive'] })).toThrow(
      'router.policy: "adaptve" is not a router policy (known: learned, adaptive)',
    );
    expect(parseConfig({ ...minimal, router: { policy: 'learned' } }, 'config', { policies: ['learned'] }).router.policy).toBe('learned');
    expect(parseConfig(raw).router.policy).toBe('adaptve');
  });

  it('config.example.json is valid and matches the documented defaults', () => {
    const config = loadConfig(resolve(import.meta.dirname, '../../config.example.json'));
    expect(Object.keys(config.models)).toEqual(['small', 'large']);
    expect(config.router.policy).toBe('adaptive');
    expect(config.database.path).toBe('./data/traces.db');
  });

  it('a model needs only baseURL and model; everything else has defaults', () => {
    const config = parseConfig(minimal);
    expect(config.models.a).toMatchObject({ timeoutMs: 120000, inputCostPerMTok: 0, outputCostPerMTok: 0 });
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 10485760, bodyDepthLimit: 128 });
    expect(config.limits).toMatchObject({ maxConcurrentPerKey: 0, adminRequestsPerMinute: 600, failedAuthPerMinute: 20 });
    expect(config.router).toMatchObject({ autoModel: 'auto', policy: 'adaptive', minSamples: 5, maxAttempts: 2, costWeight: 0 });
    expect(config.traces.storePrompts).toBe('truncated');
  });

  const bad: Array<[string, unknown, string]> = [
    ['a missing model name', { models: { a: { baseURL: 'http://x/v1' } } }, 'models.a.model'],
    ['a bad URL', { models: { a: { baseURL: 'not a url', model: 'm' } } }, 'models.a.baseURL'],
    ['a negative timeout', { models: { a: { baseURL: 'http://x/v1', model: 'm', timeoutMs: -1 } } }, 'models.a.timeoutMs'],
    ['an unknown key', { ...minimal, routr: {} }, 'routr'],
    ['a default model that is not configured', { ...minimal, router: { defaultModel: 'zzz' } }, 'router.defaultModel'],
    ['no models', { models: {} }, 'models'],
    ['a port out of range', { ...minimal, server: { port: 70000 } }, 'server.port'],
    ['an auto model that collides with a key', { ...minimal, router: { autoModel: 'a' } }, 'router.autoModel'],
    [
      'a default model that does not serve chat',
      { models: { a: { baseURL: 'http://x/v1', model: 'm' }, r: { baseURL: 'http://x/v1', model: 'r', endpoints: ['responses'] } }, router: { defaultModel: 'r' } },
      'router.defaultModel',
    ],
    [
      'a fallback model that does not serve chat',
      { models: { a: { baseURL: 'http://x/v1', model: 'm' }, e: { baseURL: 'http://x/v1', model: 'e', endpoints: ['embeddings'] } }, router: { fallbackModel: 'e' } },
      'router.fallbackModel',
    ],
  ];
  for (const [name, raw, path] of bad) {
    it(`rejects ${name}, naming ${path}`, () => {
      expect(() => parseConfig(raw)).toThrow(ConfigError);
      expect(() => parseConfig(raw)).toThrow(new RegExp(`\\b${path.replace('.', '\\.')}\\b`));
    });
  }

  it('takes the API key from apiKey, else the named environment variable', () => {
    const config = parseConfig({ models: { a: { baseURL: 'http://x/v1', model: 'm', apiKeyEnv: 'MY_KEY' } } });
    expect(resolveApiKey(config.models.a!, { MY_KEY: 'sk-env' })).toBe('sk-env');
    expect(resolveApiKey(config.models.a!, {})).toBeUndefined();
    const direct = parseConfig({ models: { a: { baseURL: 'http://x/v1', model: 'm', apiKey: 'sk-direct' } } });
    expect(resolveApiKey(direct.models.a!, {})).toBe('sk-direct');
  });
});

describe('tracegate serve with a bad config', () => {
  it('exits non-zero naming the bad field', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ models: { a: { baseURL: 'http://x/v1', model: 'm', timeoutMs: 'soon' } } }));
    const err = (await run(process.execPath, [CLI, 'serve', '--config', file]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toContain('models.a.timeoutMs');
  });

  it('exits non-zero on a file that is not JSON, or missing', async () => {
    const dir = tempDir();
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ nope');
    const notJson = (await run(process.execPath, [CLI, 'serve', '--config', file]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(notJson.code).not.toBe(0);
    expect(notJson.stderr).toContain('not valid JSON');
    const missing = (await run(process.execPath, [CLI, 'serve', '--config', join(dir, 'none.json')]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('cannot read config file');
  });
});
