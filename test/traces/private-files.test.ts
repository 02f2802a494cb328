import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/traces/spool.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { makeTrace } from '../helpers/trace.js';

const dir = mkdtempSync(join(tmpdir(), 'tracegate-private-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

describe('trace files are not readable by other users', () => {
  it('creates the SQLite database, its WAL and shared-memory files 0600, whatever the umask', async () => {
    const umask = process.umask(0o022);
    try {
      const path = join(dir, 'sub', 'traces.db');
      const store = new SqliteTraceStore({ path });
      await store.insert(makeTrace());
      expect(mode(path)).toBe(0o600);
      expect(mode(`${path}-wal`)).toBe(0o600);
      expect(mode(`${path}-shm`)).toBe(0o600);
      await store.close();
    } finally {
      process.umask(umask);
    }
  });

  it('creates the spool 0600, and leaves an existing file as its operator made it', () => {
    const umask = process.umask(0o022);
    try {
      const path = join(dir, 'spool.db');
      const spool = new Spool(path);
      expect(mode(path)).toBe(0o600);
      spool.close();
      const existing = join(dir, 'existing.db');
      writeFileSync(existing, '', { mode: 0o640 });
      new Spool(existing).close();
      expect(mode(existing)).toBe(0o640);
    } finally {
      process.umask(umask);
    }
  });
});
