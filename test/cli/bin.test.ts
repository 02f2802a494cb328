import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

describe('the tracegate bin', () => {
  it('regression: runs as a program after a build (npx runs dist/cli.js itself; a rebuild had left it without its execute bit: "tracegate: Permission denied")', () => {
    const run = spawnSync(resolve('dist/cli.js'), ['--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: tracegate');
  });

  it('--version prints the version of package.json, read beside the installed dist/ (not the working directory)', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const run = spawnSync(process.execPath, [resolve('dist/cli.js'), '--version'], { encoding: 'utf8', timeout: 20_000, cwd: tmpdir() });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(version);
    // As npm installs it: package.json and dist/ side by side in a folder of their own.
    const installed = mkdtempSync(join(tmpdir(), 'tracegate-installed-'));
    try {
      cpSync('dist', join(installed, 'dist'), { recursive: true });
      cpSync('package.json', join(installed, 'package.json'));
      cpSync('node_modules', join(installed, 'node_modules'), { recursive: true, dereference: false });
      const there = spawnSync(process.execPath, [join(installed, 'dist/cli.js'), '--version'], { encoding: 'utf8', timeout: 20_000, cwd: tmpdir() });
      expect(there.stdout.trim()).toBe(version);
    } finally {
      rmSync(installed, { recursive: true, force: true });
    }
  });
});
