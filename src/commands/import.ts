import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { parseTraceLine, TraceLineError } from '../traces/interchange.js';
import { SqliteTraceStore } from '../traces/sqlite-store.js';
import type { ImportResult, TraceRecord, TraceStore } from '../traces/types.js';
import { dbPathFrom, UsageError, withDbOptions, type DbFlags } from './options.js';

/** The traces of a JSONL stream (the export format), validated line by line; blank lines are skipped. */
export async function* readTraceLines(input: Readable): AsyncGenerator<TraceRecord> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    yield parseTraceLine(n === 1 ? text.replace(/^\uFEFF/, '') : text, n);
  }
}

/** Imports a JSONL stream all or nothing: a bad line throws a TraceLineError and nothing is added. */
export function importTraces(store: Pick<TraceStore, 'importTraces'>, input: Readable): Promise<ImportResult> {
  return store.importTraces(readTraceLines(input));
}

function openInput(file: string): Promise<Readable> {
  if (file === '-') return Promise.resolve(process.stdin);
  const stream = createReadStream(file);
  return new Promise((resolve, reject) => {
    stream.once('open', () => resolve(stream));
    stream.once('error', (err) => reject(new UsageError(`cannot read ${file}: ${err.message}`)));
  });
}

export async function importCommand(file: string, flags: DbFlags): Promise<void> {
  let store: SqliteTraceStore | undefined;
  try {
    const path = dbPathFrom(flags);
    const input = await openInput(file);
    store = new SqliteTraceStore({ path });
    const { inserted, skipped } = await importTraces(store, input);
    const source = file === '-' ? 'standard input' : file;
    process.stdout.write(
      `imported ${inserted} trace${inserted === 1 ? '' : 's'} from ${source} into ${path}` +
        `; skipped ${skipped} already there\n`,
    );
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof TraceLineError)) throw err;
    const where = err instanceof TraceLineError ? `${file === '-' ? 'stdin' : file}: ` : '';
    const nothing = err instanceof TraceLineError ? '; nothing was imported' : '';
    process.stderr.write(`tracegate import: ${where}${err.message}${nothing}\n`);
    process.exitCode = 1;
  } finally {
    await store?.close();
  }
}

/** Adds `tracegate import`: traces from a JSONL export (another instance's, say) into the database file. */
export function withImportCommand(program: Command): Command {
  const cmd = program
    .command('import')
    .description('add traces from a JSONL export (another instance\'s, say): all or nothing, ids already there skipped')
    .addHelpText(
      'after',
      '\nEach line is validated; a bad one fails the import, naming its line, and nothing is added.\n' +
        'A gateway routes with the new traces from its next update from the store (at start, or every\n' +
        'router.updateIntervalSeconds); `tracegate update` shows what they change.',
    )
    .argument('<file>', 'the JSONL file ("-" for standard input)');
  withDbOptions(cmd, false).action(importCommand);
  return program;
}
