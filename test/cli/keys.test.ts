import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sha256 } from '../../src/access/keys.js';
import { parseConfig } from '../../src/core/config.js';
import { CLI } from '../helpers/process.js';

const run = promisify(execFile);

describe('tracegate keys add', () => {
  it('prints a new random key once, with the SHA-256 entry for auth.clientKeys', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'add', 'search-team']);
    const key = /^\s+(tg-\S+)$/m.exec(stdout)![1]!;
    const entry = JSON.parse(/^\s+(\{.*\})$/m.exec(stdout)![1]!);
    expect(entry).toEqual({ name: 'search-team', sha256: sha256(key).toString('hex') });
    expect(key.length).toBeGreaterThan(40);
    const again = await run(process.execPath, [CLI, 'keys', 'add', 'search-team']);
    expect(again.stdout).not.toContain(key);
  });

  it('--admin prints the entry for auth.adminKey, NAME recorded in it (and the config takes it)', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'add', 'ops', '--admin']);
    const key = /^\s+(tg-\S+)$/m.exec(stdout)![1]!;
    expect(JSON.parse(/^\s+(\{.*\})$/m.exec(stdout)![1]!)).toEqual({ name: 'ops', sha256: sha256(key).toString('hex') });
    expect(stdout).toContain('auth.adminKey');
    const adminKey = JSON.parse(/^\s+(\{.*\})$/m.exec(stdout)![1]!);
    const config = parseConfig({ models: { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' } }, auth: { adminKey } });
    expect(config.auth.adminKey).toEqual({ name: 'ops', sha256: sha256(key).toString('hex') });
  });
});
