import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { FakeUpstream } from './fake-upstream.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

const run = promisify(execFile);

/** Runs the built CLI (test/global-setup.ts builds it when src/ is newer) to its end: its exit code and output, whether it failed or not. */
export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWithEnv({}, ...args);
}

/** `cli` with these environment variables added to the test's. */
export async function cliWithEnv(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** A config file for `tracegate serve`: models small/large on `upstream`, the policy seeded (`router.seed` 1 unless `extra` gives one). */
export function writeConfig(dir: string, upstream: FakeUpstream, extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'config.json');
  const router = (extra.router as Record<string, unknown> | undefined) ?? { policy: 'learned', defaultModel: 'small', fallbackModel: 'large' };
  writeFileSync(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      database: { path: join(dir, 'traces.db') },
      models: {
        small: { baseURL: upstream.baseURL, model: 'small-model', timeoutMs: 5000 },
        large: { baseURL: upstream.baseURL, model: 'large-model', timeoutMs: 5000 },
      },
      logging: { level: 'info' },
      ...extra,
      router: { seed: 1, ...router },
    }),
  );
  return file;
}

/** Runs `tracegate serve` in a child process and resolves once it listens. */
export function spawnGateway(configFile: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${out}`)), 15_000);
    const onData = () => {
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolvePromise({ child, url: match[1]!, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${out}`));
    });
  });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}
