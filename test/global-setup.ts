import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every temporary file of a run (the tests' own, and those of the gateways and CLI commands they
 * start) goes under one folder, removed when the run ends: tests that write a config or a dataset
 * and exit without cleaning up no longer leave folders in the system's temporary directory.
 * Vitest calls this once for the run and once per project (vitest.config.ts); the first call makes
 * the folder and the others keep it (nested folders made Chromium's socket path too long).
 */
export default function setup(): () => void {
  if (process.env.TRACEGATE_TEST_TMPDIR !== undefined) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-tests-'));
  process.env.TMPDIR = dir;
  process.env.TRACEGATE_TEST_TMPDIR = dir;
  return () => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.TRACEGATE_TEST_TMPDIR;
  };
}
