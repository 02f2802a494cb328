import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Makes a database file's folder, and the file itself readable and writable by its owner only
 * (0600) when it does not exist yet: traces hold prompts and key names. SQLite gives the files it
 * adds beside it (the WAL, the shared-memory index) the same permissions. An existing file keeps
 * the permissions its operator gave it.
 */
export function preparePrivateFile(path: string): void {
  if (path === ':memory:' || path === '') return;
  mkdirSync(dirname(resolve(path)), { recursive: true });
  // 'a': create if missing, never truncate; the mode applies only to a file created here.
  closeSync(openSync(path, 'a', 0o600));
}
