import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { pino } from 'pino';
import { parseConfig, type Config } from '../../src/core/config.js';
import { startGateway, type RunningGateway } from '../../src/app/server.js';
import type { FakeUpstream } from './fake-upstream.js';

export interface TestGateway extends RunningGateway {
  client: OpenAI;
  dbPath: string;
  dir: string;
  config: Config;
  /** Closes the gateway and removes its temporary folder. */
  stop(): Promise<void>;
}

export function tempDir(prefix = 'tracegate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A config with models small/large (and any extra) all served by one fake upstream. The policy's
 * exploration is seeded (`router.seed` 1 unless the test gives one), so a test routes alike on every run.
 */
export function testConfig(upstream: FakeUpstream, overrides: Record<string, unknown> = {}, dbPath = ':memory:'): Config {
  const { models, router, ...rest } = overrides as { models?: Record<string, unknown>; router?: Record<string, unknown> };
  return parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    database: { path: dbPath },
    models: models ?? {
      small: { baseURL: upstream.baseURL, model: 'small-model', inputCostPerMTok: 0.1, outputCostPerMTok: 0.2, timeoutMs: 2000 },
      large: { baseURL: upstream.baseURL, model: 'large-model', inputCostPerMTok: 2.5, outputCostPerMTok: 10, timeoutMs: 2000 },
    },
    router: { seed: 1, ...(models ? router : { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', ...router }) },
    logging: { level: 'silent' },
    ...rest,
  });
}

export async function startTestGateway(
  upstream: FakeUpstream,
  overrides: Record<string, unknown> = {},
  options: { dir?: string; clock?: () => number } = {},
): Promise<TestGateway> {
  const dir = options.dir ?? tempDir();
  const dbPath = join(dir, 'traces.db');
  const config = testConfig(upstream, overrides, dbPath);
  const running = await startGateway(config, { logger: pino({ level: 'silent' }), clock: options.clock });
  const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'test-client-key', maxRetries: 0 });
  return {
    ...running,
    client,
    dbPath,
    dir,
    config,
    async stop() {
      await running.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
