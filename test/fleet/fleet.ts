import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { exited, spawnGateway, type GatewayProcess } from '../helpers/process.js';

/** `tracegate serve` processes of one fleet: each with its own config file, spool and instance id. */

export interface FleetMember extends GatewayProcess {
  id: string;
}

/** A member's config file: its own spool, and its policy seeded (`router.seed` 1 unless `config` gives one). */
export function fleetConfig(dir: string, id: string, config: Record<string, unknown>): string {
  const file = join(dir, `${id}.json`);
  const database = (config.database ?? {}) as Record<string, unknown>;
  const router = (config.router ?? {}) as Record<string, unknown>;
  writeFileSync(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      logging: { level: 'warn' },
      instanceId: id,
      ...config,
      database: { spoolPath: join(dir, `${id}-spool.db`), ...database },
      router: { seed: 1, ...router },
    }),
  );
  return file;
}

export async function startMember(dir: string, id: string, config: Record<string, unknown>): Promise<FleetMember> {
  // The listening line is logged at info; the config's warn keeps the per-request lines out.
  const proc = await spawnGateway(fleetConfig(dir, id, config), [], { TRACEGATE_LOG_LEVEL: 'info' });
  return { ...proc, id };
}

export async function stopMember(m: FleetMember): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  m.child.kill('SIGTERM');
  await exited(m.child);
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const res = await request(url);
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await res.body.dump();
  return res.statusCode;
}

/** Polls `check` every 50 ms until it holds; fails after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How many times the member rebuilt its policy from the store (at boot, then at each sync). */
export async function policyUpdates(m: GatewayProcess): Promise<number> {
  const text = await (await request(`${m.url}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith('tracegate_policy_updates_total '));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/**
 * Resolves once every member has finished two syncs after this call: the second started after the
 * call, so it read everything committed before it.
 */
export async function synced(members: readonly GatewayProcess[], timeoutMs = 20_000): Promise<void> {
  const from = await Promise.all(members.map(policyUpdates));
  await until(async () => (await Promise.all(members.map(policyUpdates))).every((n, i) => n >= from[i]! + 2), timeoutMs, 'two syncs on each instance');
}
