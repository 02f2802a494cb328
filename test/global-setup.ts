import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every temporary file of a run (the tests' own, and those of the gateways and CLI commands they
 * start) goes under one folder, removed when the run ends: tests that write a config or a dataset
 * and exit without cleaning up no longer leave folders in the system's temporary directory.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-tests-'));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
