import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { parseTraceLine } from '../traces/interchange.js';
import { describeStore } from '../traces/factory.js';
import type { ImportResult, TraceRecord, TraceStore } from '../traces/types.js';
import { collectMap, readEvalImport } from './import-eval.js';
import { databaseFrom, openDatabase, readConfig, withDbOptions, type DbFlags } from './options.js';
import { UsageError, TraceLineError } from '../core/errors.js';

interface ImportFlags extends DbFlags {
  /** The file is offline evaluation results (tracegate eval's data format), imported as offline evidence. */
  eval?: boolean;
  map?: Record<string, string>;
}

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

/** `tracegate import --eval`: evaluation results as offline traces (a prior for every policy). */
async function importEvalCommand(file: string, flags: ImportFlags): Promise<void> {
  let store: TraceStore | undefined;
  try {
    if (file === '-') throw new UsageError('--eval reads a file, not standard input');
    const config = flags.config !== undefined ? readConfig(flags.config) : undefined;
    const database = databaseFrom(flags, config);
    const plan = readEvalImport(file, { map: flags.map ?? {}, config });
    store = await openDatabase(database);
    const { inserted, skipped } = await store.importTraces(plan.traces);
    const pairs = Object.entries(plan.models).map(([name, key]) => (name === key ? key : `${name} → ${key}`));
    process.stdout.write(
      `imported ${inserted} offline trace${inserted === 1 ? '' : 's'} (${plan.prompts} prompts × ${pairs.length} models: ${pairs.join(', ')}) ` +
        `from ${file} into ${describeStore(database)}; skipped ${skipped} already there\n` +
        (plan.skipped.length > 0 ? `left out (not mapped to a configured model): ${plan.skipped.join(', ')}\n` : '') +
        'policies take it as a prior of router.priorWeight observations per query class × model from their next update; ' +
        '`tracegate purge --offline` removes it\n',
    );
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tracegate import: ${err.message}; nothing was imported\n`);
    process.exitCode = 1;
  } finally {
    await store?.close();
  }
}

export async function importCommand(file: string, flags: ImportFlags): Promise<void> {
  if (flags.eval) return importEvalCommand(file, flags);
  if (flags.map !== undefined) {
    process.stderr.write('tracegate import: --map goes with --eval\n');
    process.exitCode = 1;
    return;
  }
  let store: TraceStore | undefined;
  try {
    const database = databaseFrom(flags);
    const input = await openInput(file);
    store = await openDatabase(database);
    const { inserted, skipped } = await importTraces(store, input);
    const source = file === '-' ? 'standard input' : file;
    process.stdout.write(
      `imported ${inserted} trace${inserted === 1 ? '' : 's'} from ${source} into ${describeStore(database)}` +
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

/** Adds `tracegate import`: traces from a JSONL export (another instance's, say) into the trace store. */
export function withImportCommand(program: Command): Command {
  const cmd = program
    .command('import')
    .description('add traces from a JSONL export (another instance\'s, say): all or nothing, ids already there skipped')
    .addHelpText(
      'after',
      '\nEach line is validated; a bad one fails the import, naming its line, and nothing is added.\n' +
        'A gateway routes with the new traces from its next update from the store (at start, or every\n' +
        'router.updateIntervalSeconds); `tracegate update` shows what they change.\n\n' +
        'With --eval the file is offline evaluation results, one prompt per line with per-model scores and\n' +
        'dollars ({"prompt", "scores": {model: 0..1}, "costs": {model: $}}, as `tracegate eval` reads):\n' +
        'one trace per prompt × model, marked offline (outcome success, feedback = score, cost = dollars).\n' +
        'Every policy takes offline evidence as a prior of router.priorWeight observations per query\n' +
        'class × model, which live traffic overrides; `tracegate purge --offline` removes it.',
    )
    .argument('<file>', 'the JSONL file ("-" for standard input)')
    .option('--eval', 'the file is offline evaluation results (tracegate eval\'s data format), imported as offline evidence')
    .option('--map <name=key>', 'with --eval: import the data\'s model NAME as the configured model KEY (repeatable; without any, names are kept)', (v: string, p?: Record<string, string>) => collectMap(v, p));
  withDbOptions(cmd, false).action(importCommand);
  return program;
}
