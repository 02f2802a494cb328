import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { toJsonLine } from '../../src/traces/interchange.js';
import { syntheticRows, toJsonl } from '../eval/synthetic.js';
import { tempDir } from '../helpers/gateway.js';
import { CLI, cli } from '../helpers/process.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { makeTrace } from '../helpers/trace.js';

/**
 * Every command works on the fleet's PostgreSQL too (database.url in the config): those that read
 * the store (stats, export, update, explain) beside a running instance, and those that write to it
 * (import, import --eval, purge).
 */

const pgSkip = await pgUnavailable();
const run = promisify(execFile);

describe.skipIf(pgSkip !== null)(`commands on a PostgreSQL store${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let db: TestDatabase;
  let dir: string;
  let running: PgTraceStore;
  let config: string;
  const traces = Array.from({ length: 12 }, (_, i) =>
    makeTrace({ modelKey: i % 3 === 0 ? 'large' : 'small', queryClass: i % 2 ? 'code' : 'short', instanceId: i % 2 ? 'gw-1' : 'gw-2' }),
  );

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    const spoolPath = join(dir, 'spool.db');
    // A gateway of the fleet is running with this config (and owns its spool file).
    running = await PgTraceStore.open({ url: db.url, spoolPath });
    for (const t of traces) await running.insert(t);
    config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        database: { url: db.url, spoolPath },
        models: { small: { baseURL: 'http://127.0.0.1:9/v1', model: 's' }, large: { baseURL: 'http://127.0.0.1:9/v1', model: 'l' } },
      }),
    );
  }, 30_000);
  afterAll(async () => {
    await running.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('tracegate stats --json: the whole fleet, per instance', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'stats', '--config', config, '--json']);
    const json = JSON.parse(stdout) as { total_traces: number; instances: Record<string, { count: number }> };
    expect(json.total_traces).toBe(12);
    expect(Object.fromEntries(Object.entries(json.instances).map(([k, v]) => [k, v.count]))).toEqual({ 'gw-1': 6, 'gw-2': 6 });
  });

  it('tracegate export: every trace, in order', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'export', '--config', config]);
    expect(stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(traces.map((t) => t.id));
  });

  it('tracegate update: the policy from the shared store', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'update', '--config', config]);
    expect(JSON.parse(stdout)).toMatchObject({ updated: true, total_traces: 12 });
  });
});

describe.skipIf(pgSkip !== null)(`commands that write to a PostgreSQL store${pgSkip ? ` — skipped: ${pgSkip}` : ''}`, () => {
  let db: TestDatabase;
  let dir: string;
  let config: string;
  const T0 = 1_750_000_000_000;
  const count = async (where = 'true') => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM traces WHERE ${where}`))[0]!.n);
  const CODE = 'Write a Python version of this snippet, item 3:\n```\nx = 3\nprint(x + 1)\n```\n';

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    config = join(dir, 'config.json');
    const model = (name: string, price: number) => ({ baseURL: 'http://127.0.0.1:9/v1', model: name, inputCostPerMTok: price, outputCostPerMTok: price });
    writeFileSync(
      config,
      JSON.stringify({
        database: { url: db.url, spoolPath: join(dir, 'spool.db') },
        models: { premium: model('premium-model', 5), budget: model('budget-model', 1) },
        router: { policy: 'contextual', costWeight: 0, priorWeight: 100 },
        logging: { level: 'silent' },
      }),
    );
  }, 30_000);
  afterAll(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('tracegate import: a JSONL export into PostgreSQL, all or nothing, known ids skipped', async () => {
    const traces = [
      makeTrace({ time: T0, modelKey: 'premium', feedback: 0.5, feedbackSource: 'human', query: 'old secret prompt' }),
      makeTrace({ time: T0 + 1, modelKey: 'premium', outcome: 'error', costUsd: null }),
      makeTrace({ time: T0 + 2, modelKey: 'budget' }),
      makeTrace({ time: T0 + 10, modelKey: 'premium' }),
      makeTrace({ time: T0 + 11, modelKey: 'budget', queryClass: 'code' }),
    ];
    const file = join(dir, 'export.jsonl');
    writeFileSync(file, traces.map(toJsonLine).join(''));
    const imported = await cli('import', file, '--config', config);
    expect(imported).toMatchObject({ code: 0, stderr: '' });
    expect(imported.stdout).toBe(`imported 5 traces from ${file} into ${new URL(db.url).toString()}; skipped 0 already there\n`);
    expect((await db.query<{ id: string }>('SELECT id FROM traces ORDER BY seq')).map((r) => r.id)).toEqual(traces.map((t) => t.id));
    // What export reads back is what was imported.
    expect((await cli('export', '--config', config)).stdout).toBe(traces.map(toJsonLine).join(''));

    const again = await cli('import', file, '--config', config);
    expect(again.stdout).toContain('imported 0 traces');
    expect(again.stdout).toContain('skipped 5 already there');

    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${toJsonLine(makeTrace())}${JSON.stringify({ ...JSON.parse(toJsonLine(makeTrace())), outcome: 'splendid' })}\n`);
    const refused = await cli('import', bad, '--config', config);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tracegate import: .*bad\.jsonl: line 2: outcome: .*; nothing was imported\n$/);
    expect(await count()).toBe(5);
  });

  it('tracegate purge --before: deletes old live traces from PostgreSQL, keeping their sums', async () => {
    const { code, stdout, stderr } = await cli('purge', '--config', config, '--before', new Date(T0 + 5).toISOString());
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^deleted 3 traces from before /);
    expect(await count()).toBe(2);
    expect(await count("query = 'old secret prompt'")).toBe(0);
    const folded = await db.query<{ n: string }>('SELECT sum(count) AS n FROM purged_evidence');
    expect(Number(folded[0]!.n)).toBe(3);
    // `update` still counts them as evidence.
    expect(JSON.parse((await cli('update', '--config', config)).stdout)).toMatchObject({ updated: true });
  });

  it('tracegate import --eval, explain and purge --offline on PostgreSQL', async () => {
    const data = join(dir, 'offline.jsonl');
    writeFileSync(data, toJsonl(syntheticRows(40)));
    const first = await cli('import', '--eval', data, '--config', config, '--map', 'alpha=premium', '--map', 'gamma=budget');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`imported 160 offline traces (80 prompts × 2 models: alpha → premium, gamma → budget) from ${data} into ${new URL(db.url).toString()}`);
    expect(await count("source = 'offline'")).toBe(160);
    const again = await cli('import', '--eval', data, '--config', config, '--map', 'alpha=premium', '--map', 'gamma=budget');
    expect(again.stdout).toContain('skipped 160 already there');
    expect(await count("source = 'offline'")).toBe(160);

    // The contextual policy learned the offline evidence from PostgreSQL: alpha (premium) is right on every snippet.
    const shown = await cli('explain', CODE, '--config', config);
    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^query class: code/);
    expect(shown.stdout).toMatch(/\npremium \*\s+0\.9\d\d/);
    expect(JSON.parse((await cli('explain', CODE, '--config', config, '--json')).stdout).choice).toBe('premium');

    const purged = await cli('purge', '--offline', '--config', config);
    expect(purged.code).toBe(0);
    expect(purged.stdout).toMatch(/^deleted 160 offline traces/);
    expect(await count("source = 'offline'")).toBe(0);
    expect(await count()).toBe(2);
    const cold = await cli('explain', CODE, '--config', config);
    expect(cold.stdout).not.toMatch(/\npremium \*\s+0\.9\d\d/);
  });
});
