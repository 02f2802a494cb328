import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * A copy of the SQLite (or PostgreSQL) migrations in `dir` that ends with `lastTag`: what a database
 * made by an older tracegate was migrated with, to test how the newer migrations carry it forward.
 */
export function migrationsUpTo(dir: string, lastTag: string, dialect: 'sqlite' | 'pg' = 'sqlite'): string {
  const folder = join(dir, `drizzle-${dialect}-${lastTag}`);
  cpSync(resolve(import.meta.dirname, `../../drizzle/${dialect}`), folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const last = journal.entries.findIndex((e) => e.tag === lastTag);
  if (last < 0) throw new Error(`no migration ${lastTag}`);
  journal.entries.splice(last + 1);
  writeFileSync(journalPath, JSON.stringify(journal));
  return folder;
}
