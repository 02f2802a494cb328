import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { cli, cliWithEnv, exited, spawnGateway } from '../helpers/process.js';

/** An OpenAI-like upstream: /v1/models and /v1/chat/completions with key sk-good (else 401); anything else 404. */
function scriptedUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url !== '/v1/models' && req.url !== '/v1/chat/completions') return json(404, { error: { message: 'not found' } });
      if (req.headers.authorization !== 'Bearer sk-good') return json(401, { error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } });
      if (req.url === '/v1/models') return json(200, { object: 'list', data: [{ id: 'gpt-4o', object: 'model' }, { id: 'gpt-4o-mini', object: 'model' }] });
      return json(200, { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'p' }, finish_reason: 'length' }] });
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

let dir: string;
let upstream: Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracegate-check-'));
  upstream = await scriptedUpstream();
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => upstream.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function configFile(name: string, models: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, database: { path: join(dir, `${name}.db`) }, models, logging: { level: 'info' } }));
  return file;
}

describe('tracegate check', () => {
  it('one line per model: reachable, key accepted, model listed; exit code 0 when all pass', async () => {
    const config = configFile('good', {
      large: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKeyEnv: 'CHECK_TEST_KEY' },
      small: { baseURL: `${base}/v1`, model: 'gpt-4o-mini', apiKey: 'sk-good' },
    });
    const run = await cliWithEnv({ CHECK_TEST_KEY: 'sk-good' }, 'check', '--config', config);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ok +large \(gpt-4o at .*\): reachable, key accepted, model listed$/);
    expect(lines[1]).toMatch(/^ok +small /);
  });

  it('names each failure: unreachable, key refused, unset key, unknown model name, a baseURL without /v1 that answers 404; exit code 1', async () => {
    const config = configFile('bad', {
      down: { baseURL: `http://127.0.0.1:${await freePort()}/v1`, model: 'm', timeoutMs: 1000 },
      refused: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKey: 'sk-wrong' },
      unset: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKeyEnv: 'CHECK_TEST_UNSET_KEY' },
      misnamed: { baseURL: `${base}/v1`, model: 'gpt-40', apiKey: 'sk-good' },
      nov1: { baseURL: base, model: 'gpt-4o', apiKey: 'sk-good' },
      fine: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKey: 'sk-good' },
    });
    const run = await cli('check', '--config', config);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toContain('    at ');
    expect(run.stderr.trim()).toBe('tracegate check: 5 of 6 models failed');
    const line = (key: string) => run.stdout.split('\n').find((l) => l.includes(` ${key} (`)) ?? '';
    expect(line('down')).toMatch(/^FAIL down .*not reachable \(ECONNREFUSED\)/);
    expect(line('refused')).toMatch(/^FAIL refused .*key not accepted \(401 from \/models: Incorrect API key provided\)/);
    expect(line('unset')).toContain('no key: CHECK_TEST_UNSET_KEY is not set');
    expect(line('misnamed')).toContain('model name "gpt-40" is not in /models (2 listed: gpt-4o, gpt-4o-mini)');
    expect(line('nov1')).toContain(`baseURL ${base} answers 404 at /models: it has no /v1`);
    expect(line('fine')).toMatch(/^ok +fine /);
    expect(run.stdout.trim().split('\n')).toHaveLength(6);
  });

  it('--probe sends a one-token completion instead', async () => {
    const config = configFile('probe', {
      good: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKey: 'sk-good' },
      refused: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKey: 'sk-wrong' },
    });
    const run = await cli('check', '--config', config, '--probe');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ok +good .*a one-token completion answered$/m);
    expect(run.stdout).toMatch(/^FAIL refused .*key not accepted \(401 from \/chat\/completions/m);
  });

  it('serve runs the same checks in the background at start: one warning line per failing model', async () => {
    const config = configFile('serve', {
      small: { baseURL: `${base}/v1`, model: 'gpt-4o-mini', apiKey: 'sk-good' },
      large: { baseURL: `${base}/v1`, model: 'gpt-4o', apiKey: 'sk-wrong' },
    });
    const gw = await spawnGateway(config);
    try {
      const deadline = Date.now() + 10_000;
      while (!gw.output().includes('check: FAIL large') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const warnings = gw.output().split('\n').filter((l) => l.includes('"msg":"check: '));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, model: 'large' });
      expect(warnings[0]).toContain('key not accepted (401');
    } finally {
      gw.child.kill('SIGTERM');
      await exited(gw.child);
    }
  });
});
