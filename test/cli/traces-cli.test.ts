import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { toJsonLine, TRACE_FIELDS } from '../../src/traces/interchange.js';
import type { TraceRecord } from '../../src/traces/types.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';
import { CLI, cli } from '../helpers/process.js';

/** These tests run the built CLI: `npm test` builds first; after editing src/, run `npm run build`. */

const TRICKY = 'say "hi", then\nsplit this line, please';

let upstream: FakeUpstream;
let gw: TestGateway;
let dir: string;
let configFile: string;

beforeAll(async () => {
  if (!existsSync(join(CLI, '../commands/export.js'))) throw new Error('dist/ has no export command: run `npm run build` first');
  upstream = await startFakeUpstream();
  dir = tempDir();
  gw = await startTestGateway(
    upstream,
    { traces: { storePrompts: 'full' }, router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', circuitBreaker: { failures: 0 } } },
    { dir },
  );
  // The config the gateway runs with, as a file for the CLI (defaults written out).
  configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(gw.config));

  const ask = async (model: string, content: string) =>
    (await gw.client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse()).response.headers.get('x-trace-id')!;
  const ids = [await ask('auto', 'hi'), await ask('auto', TRICKY), await ask('large', 'def f(): `x`'), await ask('auto', 'solve x + 1 = 2')];
  upstream.script('small-model', { kind: 'status', status: 503 });
  ids.push(await ask('auto', 'hello there')); // fails over to large
  upstream.script('small-model', { kind: 'answer' });
  for (const [id, score] of [[ids[0]!, 1], [ids[2]!, 0.25], [ids[4]!, 0]] as const) {
    const res = await request(`${gw.url}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ trace_id: id, feedback: score, comment: score === 0.25 ? 'meh, "ok", I guess\nmaybe' : null }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  }
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A small RFC 4180 reader, to check the CSV the way a spreadsheet would read it. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  expect(field).toBe('');
  expect(row).toEqual([]);
  return rows;
}

describe('tracegate stats', () => {
  it('prints the routing table: per class × model, and the decision per class', async () => {
    const { code, stdout, stderr } = await cli('stats', '--config', configFile);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^policy learned: 6 traces, 5 successful, 3 with feedback/);
    expect(stdout).toMatch(/class\s+model\s+traces\s+success\s+feedback \(n\)\s+p50\s+p95\s+cost\s+estimate\s+decision/);
    expect(stdout).toMatch(/^code\s+large\s+1\s+100\.0%\s+0\.25 \(1\)\s+\d+ ms\s+\d+ ms\s+\$0\.\d{6}/m);
    expect(stdout).toMatch(/^short\s+large\s+1\s+100\.0%\s+0\.00 \(1\)/m); // the failover's answer
    expect(stdout).toMatch(/^\s+small\s+3\s+66\.7%\s+1\.00 \(1\)/m);
    expect(stdout).toContain('decision per class:');
    for (const cls of ['code', 'math', 'short']) expect(stdout).toMatch(new RegExp(`^  ${cls} -> (small|large) \\(confidence [\\d.]+\\)$`, 'm'));
  });

  it('--json prints what GET /stats serves', async () => {
    const http = (await (await request(`${gw.url}/stats`)).body.json()) as Record<string, any>;
    const { code, stdout } = await cli('stats', '--config', configFile, '--json');
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as Record<string, any>;
    // What a running instance counts since it started (its judge, shadow and sticky turns) only it can serve.
    const RUNNING_ONLY = ['judge', 'shadow', 'sticky'];
    expect(Object.keys(json)).toEqual(Object.keys(http).filter((k) => !RUNNING_ONLY.includes(k)));
    expect(http.sticky).toMatchObject({ routed_answers: expect.any(Number) });
    expect(json.total_traces).toBe(6);
    expect(json.totals).toEqual(http.totals);
    expect(json.models).toEqual(http.models);
    expect(json.policy).toBe(http.policy);
    expect(Object.keys(json.classes)).toEqual(Object.keys(http.classes));
    for (const [name, cls] of Object.entries(http.classes as Record<string, any>)) {
      expect(Object.keys(json.classes[name])).toEqual(Object.keys(cls));
      for (const [model, m] of Object.entries(cls.models as Record<string, any>)) {
        const mine = json.classes[name].models[model];
        expect(Object.keys(mine)).toEqual(Object.keys(m));
        // What the store recorded is the same; what the policy believes is rebuilt from it.
        for (const key of ['count', 'success_rate', 'mean_feedback', 'feedback_count', 'latency_p50_ms', 'latency_p95_ms', 'prompt_tokens', 'completion_tokens', 'cost_usd']) {
          expect(mine[key], `${name}.${model}.${key}`).toEqual(m[key]);
        }
      }
    }
  });

  it('--since filters like GET /stats, and a missing database is an error', async () => {
    const future = String(Date.now() + 3_600_000);
    const { stdout } = await cli('stats', '--config', configFile, '--json', '--since', future);
    expect(JSON.parse(stdout).total_traces).toBe(0);
    const missing = await cli('stats', '--config', configFile, '--db', join(dir, 'nope.db'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no database at');
    expect(existsSync(join(dir, 'nope.db'))).toBe(false);
    const bad = await cli('stats', '--config', configFile, '--since', 'yesterday-ish');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--since');
  });
});

describe('tracegate export / import', () => {
  it('round-trips every trace, feedback included, into another database; `update` then sees them', async () => {
    const file = join(dir, 'export.jsonl');
    const exported = await cli('export', '--config', configFile, '--out', file);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain('exported 6 traces');
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n')).toHaveLength(7); // six lines and the final newline
    const originals = await gw.gateway.store.list({});
    expect(text).toBe(originals.map(toJsonLine).join(''));
    expect(originals.filter((t) => t.feedback !== null)).toHaveLength(3);

    // stdout is the same as --out
    expect((await cli('export', '--db', gw.dbPath)).stdout).toBe(text);

    const other = join(dir, 'other.db');
    const imported = await cli('import', file, '--db', other);
    expect(imported).toMatchObject({ code: 0, stderr: '' });
    expect(imported.stdout).toBe(`imported 6 traces from ${file} into ${other}; skipped 0 already there\n`);
    const store = new SqliteTraceStore({ path: other });
    expect(await store.list({})).toEqual(originals);
    await store.close();
    expect((await cli('export', '--db', other)).stdout).toBe(text);

    const again = await cli('import', file, '--db', other);
    expect(again.stdout).toContain('imported 0 traces');
    expect(again.stdout).toContain('skipped 6 already there');

    const update = await cli('update', '--config', configFile, '--db', other);
    expect(update.code).toBe(0);
    expect(JSON.parse(update.stdout)).toMatchObject({ total_traces: 6 });
  });

  it('writes CSV with a header, quoting commas, quotes and line breaks', async () => {
    const { code, stdout } = await cli('export', '--db', gw.dbPath, '--format', 'csv');
    expect(code).toBe(0);
    expect(stdout.startsWith(`${TRACE_FIELDS.join(',')}\r\n`)).toBe(true);
    const rows = readCsv(stdout);
    expect(rows[0]).toEqual([...TRACE_FIELDS]);
    expect(rows).toHaveLength(7);
    for (const row of rows) expect(row).toHaveLength(TRACE_FIELDS.length);
    const col = (name: string) => TRACE_FIELDS.indexOf(name as (typeof TRACE_FIELDS)[number]);
    expect(rows.some((r) => r[col('query')] === TRICKY)).toBe(true);
    expect(rows.some((r) => r[col('feedback_comment')] === 'meh, "ok", I guess\nmaybe')).toBe(true);
    expect(stdout).toContain('"say ""hi"", then\nsplit this line, please"');
    const originals = await gw.gateway.store.list({});
    expect(rows.slice(1).map((r) => r[col('id')])).toEqual(originals.map((t) => t.id));
    expect(rows.slice(1).map((r) => r[col('routed')])).toEqual(originals.map((t) => String(t.routed)));
    expect(rows.slice(1).map((r) => r[col('status')])).toEqual(originals.map((t) => (t.status === null ? '' : String(t.status))));
  });

  it('--since / --until take ISO dates or epoch ms (since inclusive, until exclusive)', async () => {
    const path = join(dir, 'times.db');
    const base = JSON.parse(toJsonLine((await gw.gateway.store.list({}))[0]!)) as Record<string, unknown>;
    const at = (id: string, iso: string) => ({ ...base, id, time: Date.parse(iso) });
    const lines = [at('A', '2024-01-01T00:00:00Z'), at('B', '2024-06-01T00:00:00Z'), at('C', '2025-01-01T00:00:00Z')];
    const file = join(dir, 'times.jsonl');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
    expect((await cli('import', file, '--db', path)).code).toBe(0);
    const ids = async (...args: string[]) =>
      (await cli('export', '--db', path, ...args)).stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(await ids()).toEqual(['A', 'B', 'C']);
    expect(await ids('--since', '2024-06-01T00:00:00Z')).toEqual(['B', 'C']);
    expect(await ids('--until', String(Date.parse('2024-06-01T00:00:00Z')))).toEqual(['A']);
    expect(await ids('--since', '2024-03-01', '--until', String(Date.parse('2025-01-01T00:00:00Z')))).toEqual(['B']);
    const csv = await cli('export', '--db', path, '--format', 'csv', '--since', '2030-01-01');
    expect(csv.stdout).toBe(`${TRACE_FIELDS.join(',')}\r\n`);
    const inverted = await cli('export', '--db', path, '--since', '2025-01-01', '--until', '2024-01-01');
    expect(inverted.code).toBe(1);
    expect(inverted.stderr).toContain('--since must be before --until');
  });

  it('rejects a bad line naming it, and imports nothing', async () => {
    const good = (await gw.gateway.store.list({})).map((t: TraceRecord) => toJsonLine(t));
    const bad = JSON.stringify({ ...JSON.parse(good[1]!), id: 'fresh-id', outcome: 'splendid' });
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${good[0]}\n${bad}\n${good[2]}`); // a blank line 2 counts: the bad one is line 3
    const path = join(dir, 'bad.db');
    const res = await cli('import', file, '--db', path);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^tracegate import: .*bad\.jsonl: line 3: outcome: .*; nothing was imported\n$/);
    const store = new SqliteTraceStore({ path });
    expect(await store.count()).toBe(0);
    await store.close();

    writeFileSync(file, `${good[0]}{"id": 1,`);
    const broken = await cli('import', file, '--db', path);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('line 2: invalid JSON');

    const missing = await cli('import', join(dir, 'nope.jsonl'), '--db', path);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read');
  });

  it('needs --db or --config', async () => {
    const res = await cli('export');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('give --db PATH or --config FILE');
  });
});
