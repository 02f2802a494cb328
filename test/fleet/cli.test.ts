import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import { tempDir } from '../helpers/gateway.js';
import { CLI } from '../helpers/process.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../helpers/services.js';
import { makeTrace } from '../helpers/trace.js';

/** The commands that read the store (stats, export, update) work on the fleet's PostgreSQL too, beside a running instance. */

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
