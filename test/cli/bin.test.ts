import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

describe('the tracegate bin', () => {
  it('regression: runs as a program after a build (npx runs dist/cli.js itself; a rebuild had left it without its execute bit: "tracegate: Permission denied")', () => {
    const run = spawnSync(resolve('dist/cli.js'), ['--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: tracegate');
  });
});
