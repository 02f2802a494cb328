import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { Option, type Command } from 'commander';
import { CSV_HEADER, toCsvRow, toJsonLine } from '../traces/interchange.js';
import type { TimeRange, TraceRecord, TraceStore } from '../traces/types.js';
import { openOrReport, openStore, withDbOptions, withRangeOptions, type DbFlags } from './options.js';
import { UsageError } from '../core/errors.js';

interface ExportFlags extends DbFlags {
  format: 'jsonl' | 'csv';
  out?: string;
  since?: number;
  until?: number;
}

/** Bytes gathered before one write. */
const CHUNK = 64 * 1024;

/** Writes a chunk, waiting when the stream asks to (backpressure) and failing on its error. */
function write(out: Writable, chunk: string): Promise<void> {
  if (out.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', done);
      out.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    out.on('drain', done);
    out.on('error', done);
  });
}

/** The export's text, a chunk at a time. */
export async function* exportChunks(traces: AsyncIterable<TraceRecord>, format: 'jsonl' | 'csv'): AsyncGenerator<string> {
  const row = format === 'csv' ? toCsvRow : toJsonLine;
  let buffer = format === 'csv' ? CSV_HEADER : '';
  for await (const t of traces) {
    buffer += row(t);
    if (buffer.length >= CHUNK) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer.length > 0) yield buffer;
}

/** Streams the store's traces in the range to `out`; resolves with how many were written. */
export async function exportTraces(
  store: Pick<TraceStore, 'exportTraces'>,
  range: TimeRange,
  format: 'jsonl' | 'csv',
  out: Writable,
): Promise<number> {
  let n = 0;
  async function* counted() {
    for await (const t of store.exportTraces(range)) {
      n++;
      yield t;
    }
  }
  for await (const chunk of exportChunks(counted(), format)) await write(out, chunk);
  return n;
}

export async function exportCommand(flags: ExportFlags): Promise<void> {
  const store = await openOrReport('export', () => {
    if (flags.since !== undefined && flags.until !== undefined && flags.since >= flags.until) {
      throw new UsageError('--since must be before --until');
    }
    return openStore(flags, { mustExist: true });
  });
  if (store === undefined) return;
  try {
    const range = { since: flags.since, until: flags.until };
    if (flags.out === undefined) {
      // A reader that stops early (`| head`) is not an error.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(0);
        throw err;
      });
      await exportTraces(store, range, flags.format, process.stdout);
      return;
    }
    const file = createWriteStream(flags.out);
    const opened = new Promise<void>((resolve, reject) => {
      file.once('ready', () => resolve());
      file.once('error', reject);
    });
    await opened;
    const n = await exportTraces(store, range, flags.format, file);
    await new Promise<void>((resolve, reject) => {
      file.once('error', reject);
      file.end(() => resolve());
    });
    process.stderr.write(`exported ${n} trace${n === 1 ? '' : 's'} to ${flags.out}\n`);
  } finally {
    await store.close();
  }
}

/** Adds `tracegate export`: the traces as JSONL or CSV, streamed from the database file. */
export function withExportCommand(program: Command): Command {
  const cmd = program
    .command('export')
    .description('write the traces as JSONL (one object per line, the format `tracegate import` reads) or CSV');
  withRangeOptions(withDbOptions(cmd, false))
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('-o, --out <file>', 'write to this file instead of standard output')
    .action(exportCommand);
  return program;
}
