import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { exited, spawnGateway, writeConfig } from '../helpers/process.js';

let upstream: FakeUpstream;
let dir: string;
beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = tempDir();
});
afterAll(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('command line overrides', () => {
  it('--port, --host and --db win over the file', async () => {
    const config = writeConfig(dir, upstream);
    const port = await freePort();
    const db = join(dir, 'other.db');
    const gw = await spawnGateway(config, ['--port', String(port), '--host', '127.0.0.1', '--db', db]);
    try {
      expect(gw.url).toBe(`http://127.0.0.1:${port}`);
      const res = await request(`${gw.url}/health`);
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect(existsSync(db)).toBe(true);
      expect(existsSync(join(dir, 'traces.db'))).toBe(false);
    } finally {
      gw.child.kill('SIGTERM');
      await exited(gw.child);
    }
  });
});
