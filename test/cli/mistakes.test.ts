import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { cli, cliWithEnv, writeConfig } from '../helpers/process.js';

/** A user's mistake ends the command with exit code 1 and one line on stderr, no stack trace. */
function expectOneLine(run: { code: number; stderr: string }, ...parts: string[]): void {
  expect(run.code).toBe(1);
  expect(run.stderr).not.toContain('    at ');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  for (const part of parts) expect(run.stderr).toContain(part);
}

let dir: string;
let upstream: FakeUpstream;
let taken: Server;
let takenPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracegate-mistakes-'));
  upstream = await startFakeUpstream();
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  takenPort = (taken.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((r) => taken.close(() => r()));
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('start-up mistakes get one line', () => {
  it('serve on a port in use: exit code 1, one line naming the port and --port', async () => {
    const config = writeConfig(dir, upstream);
    const run = await cli('serve', '--config', config, '--port', String(takenPort));
    expectOneLine(run, String(takenPort), '--port');
  });

  it('demo on a port in use: exit code 1, one line naming the port and --port; its temporary folder is gone', async () => {
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const run = await cliWithEnv({ TMPDIR: tmp }, 'demo', '--port', String(takenPort), '-n', '1', '--exit');
    expectOneLine(run, String(takenPort), '--port');
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('a misspelt router.policy', () => {
  const commands: [string, string[]][] = [
    ['serve', ['serve']],
    ['update', ['update']],
    ['stats', ['stats']],
    ['explain', ['explain', 'hello']],
    ['export', ['export']],
    ['purge', ['purge', '--offline']],
    ['import', ['import', '-']],
  ];
  for (const [name, args] of commands) {
    it(`${name}: a config error naming router.policy and the known policies, before any database file is made`, async () => {
      const sub = mkdtempSync(join(dir, `policy-${name}-`));
      const config = writeConfig(sub, upstream, { router: { policy: 'adaptve', defaultModel: 'small' } });
      const run = await cli(...args, '--config', config);
      expect(run.code).toBe(1);
      expect(run.stderr).not.toContain('    at ');
      expect(run.stderr).toContain('router.policy: "adaptve" is not a router policy (known: learned, heuristic, adaptive, contextual)');
      expect(existsSync(join(sub, 'traces.db'))).toBe(false);
    });
  }
});

describe('stats, explain and export with --db alone (the demo writes no config)', () => {
  it("read the demo's database: the models from its traces, the router's defaults", async () => {
    const db = join(dir, 'demo.db');
    expect((await cli('demo', '--port', '0', '-n', '40', '--seed', '2', '--db', db, '--exit')).code).toBe(0);
    const stats = await cli('stats', '--db', db);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('<- chosen');
    expect(stats.stderr).toContain('no --config: the models traced in');
    const json = await cli('stats', '--db', db, '--json');
    expect(JSON.parse(json.stdout).total_traces).toBeGreaterThan(0);
    const explain = await cli('explain', 'write a python function that reverses a list', '--db', db);
    expect(explain.code).toBe(0);
    expect(explain.stdout).toContain('mini-chat');
    const exported = await cli('export', '--db', db);
    expect(exported.code).toBe(0);
    expect(exported.stdout.trim().split('\n').length).toBeGreaterThan(0);
  });

  it('without --db or --config, or with a --db that is not there: one line', async () => {
    expectOneLine(await cli('stats'), '--db', '--config');
    expectOneLine(await cli('explain', 'hi'), '--db', '--config');
    expectOneLine(await cli('stats', '--db', join(dir, 'missing.db')), 'missing.db');
    expect(existsSync(join(dir, 'missing.db'))).toBe(false);
  });
});

describe('every command: a user mistake is one line', () => {
  it('a config file missing or not JSON, a file in the way of --db or --out, a bad flag value, a bad --since, an unknown command', async () => {
    const config = writeConfig(dir, upstream);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{bad');
    const inTheWay = join(config, 'x.db'); // a path under a file
    const cases: [string[], string][] = [
      [['serve', '--config', join(dir, 'nope.json')], 'cannot read config file'],
      [['serve', '--config', bad], 'is not valid JSON'],
      [['serve', '--config', config, '--db', inTheWay], 'EEXIST'],
      [['demo', '--db', inTheWay, '-n', '1', '--exit', '--port', '0'], 'EEXIST'],
      [['export', '--db', inTheWay], 'no database at'],
      [['serve', '--config', config, '--port', 'x'], '--port'],
      [['demo', '--port', '99999'], '--port'],
      [['update', '--config', config, '--since', 'garbage'], '--since'],
      [['stats', '--config', config, '--until', 'garbage'], '--until'],
      [['purge', '--db', join(dir, 'demo.db'), '--before', 'garbage'], '--before'],
      [['keys', 'add'], "missing required argument 'name'"],
      [['check'], '--config'],
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['import', join(dir, 'nope.jsonl'), '--db', join(dir, 'i.db')], 'nope.jsonl'],
      [['eval', '--data', join(dir, 'nope.jsonl')], 'nope.jsonl'],
    ];
    for (const [args, part] of cases) {
      const run = await cli(...args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr, args.join(' ')).not.toContain('    at ');
      expect(run.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr, args.join(' ')).toContain(part);
    }
  });

  it('export --out into a path that cannot be written: one line', async () => {
    const db = join(dir, 'out.db');
    expect((await cli('demo', '--port', '0', '-n', '5', '--db', db, '--exit')).code).toBe(0);
    expectOneLine(await cli('export', '--db', db, '--out', join(writeConfig(dir, upstream), 'out.jsonl')), 'ENOTDIR');
  });
});

describe('the demo', () => {
  it('removes its temporary folder when it exits (--exit)', async () => {
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const run = await cliWithEnv({ TMPDIR: tmp }, 'demo', '--port', '0', '-n', '20', '--seed', '1', '--exit');
    expect(run.code).toBe(0);
    const db = /traces in (\S+)/.exec(run.stdout)![1]!;
    expect(db.startsWith(tmp)).toBe(true);
    expect(existsSync(db)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
