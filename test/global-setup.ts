import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TestProject } from 'vitest/node';

const ROOT = join(import.meta.dirname, '..');

/**
 * Vitest calls this once for the run (the root project) and once per project that has test files in
 * the run (vitest.config.ts).
 *
 * 1. Every temporary file of a run (the tests' own, and those of the gateways and CLI commands they
 *    start) goes under one folder, removed when the run ends: tests that write a config or a dataset
 *    and exit without cleaning up no longer leave folders in the system's temporary directory. The
 *    first call makes the folder and the others keep it (nested folders made Chromium's socket path
 *    too long).
 * 2. The projects other than `unit` run the built CLI (`dist/cli.js`, `tracegate serve` in child
 *    processes) or import from `dist/`: `dist/` is built first when it is older than `src/`, so
 *    `npx vitest run <file>` after an edit tests the edit, not the last build.
 */
export default function setup(project: TestProject): () => void {
  if (project.name !== '' && project.name !== 'unit') ensureFreshBuild();
  if (process.env.TRACEGATE_TEST_TMPDIR !== undefined) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-tests-'));
  process.env.TMPDIR = dir;
  process.env.TRACEGATE_TEST_TMPDIR = dir;
  return () => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.TRACEGATE_TEST_TMPDIR;
  };
}

function files(dir: string, ext: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files(path, ext, out);
    else if (entry.name.endsWith(ext) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/**
 * Why `dist/` is not the build of the sources now, or null when it is: a source without its `.js`,
 * a `.js` whose source is gone (moved or deleted), or a source or build setting newer than the
 * oldest `.js` (tsc reads every source before it writes any output). A few ms when fresh.
 */
export function staleBuild(): string | null {
  const src = join(ROOT, 'src');
  const dist = join(ROOT, 'dist');
  const sources = files(src, '.ts');
  const outputs = files(dist, '.js');
  if (outputs.length === 0) return 'there is no dist/';
  const expected = new Set(sources.map((s) => relative(src, s).replace(/\.ts$/, '.js')));
  const built = new Set(outputs.map((o) => relative(dist, o)));
  for (const js of expected) if (!built.has(js)) return `dist/${js} is missing`;
  for (const js of built) if (!expected.has(js)) return `dist/${js} has no source in src/`;
  const oldest = Math.min(...outputs.map((o) => statSync(o).mtimeMs));
  const inputs = [...sources, ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => join(ROOT, f))];
  for (const input of inputs) if (statSync(input).mtimeMs > oldest) return `${relative(ROOT, input)} changed since the build`;
  return null;
}

let checked = false;

function ensureFreshBuild(): void {
  if (checked) return;
  checked = true;
  const why = staleBuild();
  if (why === null) return;
  process.stderr.write(`tests: building dist/ first (${why}): npm run build\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed (exit ${build.status}):\n${build.stdout}${build.stderr}`);
}
