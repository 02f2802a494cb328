import { Command, InvalidArgumentError } from 'commander';
import { configSchema, loadConfig } from '../core/config.js';
import { promptContext } from '../routing/context.js';
import { policyNames } from '../routing/registry.js';
import { loadDataset, type Dataset } from './dataset.js';
import { runEval, type EvalSettings } from './evaluate.js';
import { progressBar } from './progress.js';
import { buildReport, formatReport } from './report.js';
import { TracegateError, UsageError } from '../core/errors.js';

/** Policies run when --policy is not given (those of them that are registered). */
const DEFAULT_POLICIES = ['adaptive', 'contextual', 'learned'];
/** Cost weights run when neither --lambdas nor --cost-weight is given. */
export const DEFAULT_LAMBDAS = [0, 10, 50, 200, 1000];
const HEURISTIC_NOTE =
  'heuristic chooses by model size (sizeB), which the data does not give: without sizes its smallest/largest rules all pick the first model';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function nonNegative(value: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

function share(value: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

function driftKind(value: string): 'break' | 'degrade' {
  if (value !== 'break' && value !== 'degrade') throw new InvalidArgumentError("must be 'break' or 'degrade'");
  return value;
}

function lambdaList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const out: number[] = [];
  for (const part of parts) {
    const n = part === '' ? NaN : Number(part);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a comma-separated list of non-negative numbers');
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** --policy a,b --policy c → [a, b, c] (repeats dropped). */
function collectNames(value: string, previous: string[] | undefined): string[] {
  const out = [...(previous ?? [])];
  for (const name of value.split(',').map((s) => s.trim())) if (name !== '' && !out.includes(name)) out.push(name);
  return out;
}

/** The config's default halfLife (router.halfLife), read from the zod schema so it never drifts. */
export function defaultHalfLife(): number {
  return configSchema.shape.router.parse(undefined).halfLife;
}

/** The config's default router.priorWeight. */
export function defaultPriorWeight(): number {
  return configSchema.shape.router.parse(undefined).priorWeight;
}

export interface EvalFlags {
  data: string;
  policy?: string[];
  seeds: number;
  costWeight?: number;
  lambdas?: number[];
  splitTrain?: string;
  splitTest?: string;
  warmStart?: boolean;
  priorWeight: number;
  halfLife: number;
  minSamples: number;
  updateEvery: number;
  json?: boolean;
  /** A config file whose router.classes rules classify the prompts. */
  config?: string;
  feedbackRate: number;
  judgeRate: number;
  judgeNoise: number;
  shadowRate: number;
  judgeModel?: string;
  drift?: 'break' | 'degrade';
}

/** The data set with its prompts classified by a config's router.classes rules (then the built-in classifier). */
export function withConfigClasses(dataset: Dataset, file: string): { dataset: Dataset; note: string } {
  const rules = loadConfig(file, process.env, { policies: policyNames() }).router.classes;
  const queries = dataset.queries.map((q) => ({ ...q, queryClass: promptContext(q.prompt, { rules }).queryClass }));
  const counts = new Map<string, number>();
  for (const q of queries) counts.set(q.queryClass, (counts.get(q.queryClass) ?? 0) + 1);
  const summary = [...counts].map(([name, n]) => `${name} ${n}`).join(', ');
  return { dataset: { ...dataset, queries }, note: `query classes from ${file}'s ${rules.length} router.classes rule(s), then the built-in classifier: ${summary}` };
}

/** The settings the flags ask for, with the notes the report should carry. */
export function settingsFrom(flags: EvalFlags): { settings: EvalSettings; notes: string[] } {
  const notes: string[] = [];
  if (flags.costWeight !== undefined && flags.lambdas !== undefined) {
    throw new UsageError('give either --cost-weight or --lambdas, not both');
  }
  if ((flags.splitTrain === undefined) !== (flags.splitTest === undefined)) {
    throw new UsageError('--split-train and --split-test go together');
  }
  // Warm start needs a split: train and test unless named.
  const splitTrain = flags.splitTrain ?? (flags.warmStart ? 'train' : undefined);
  const splitTest = flags.splitTest ?? (flags.warmStart ? 'test' : undefined);
  const known = policyNames();
  let policies: string[];
  if (flags.policy !== undefined && flags.policy.length > 0) {
    policies = flags.policy;
    const unknown = policies.filter((p) => !known.includes(p));
    if (unknown.length > 0) {
      throw new UsageError(`unknown policy ${unknown.map((p) => `"${p}"`).join(', ')} (known: ${known.join(', ')})`);
    }
    if (policies.includes('heuristic')) notes.push(HEURISTIC_NOTE);
  } else {
    policies = DEFAULT_POLICIES.filter((p) => known.includes(p));
    if (known.includes('heuristic')) notes.push(`${HEURISTIC_NOTE}; skipped (run it anyway with --policy heuristic)`);
  }
  const lambdas = flags.costWeight !== undefined ? [flags.costWeight] : (flags.lambdas ?? DEFAULT_LAMBDAS);
  return {
    settings: {
      policies,
      seeds: flags.seeds,
      lambdas,
      halfLife: flags.halfLife,
      minSamples: flags.minSamples,
      updateEvery: flags.updateEvery,
      priorWeight: flags.priorWeight,
      split: splitTrain !== undefined && splitTest !== undefined ? { train: splitTrain, test: splitTest } : undefined,
      warmStart: flags.warmStart === true,
      signals: {
        feedbackRate: flags.feedbackRate,
        judgeRate: flags.judgeRate,
        judgeNoise: flags.judgeNoise,
        shadowRate: flags.shadowRate,
        judgeModel: flags.judgeModel,
      },
      drift: flags.drift,
    },
    notes,
  };
}

export async function evalCommand(flags: EvalFlags): Promise<void> {
  try {
    const { settings, notes } = settingsFrom(flags);
    let dataset = loadDataset(flags.data);
    if (flags.config !== undefined) {
      const classified = withConfigClasses(dataset, flags.config);
      dataset = classified.dataset;
      notes.push(classified.note);
    }
    const progress = progressBar('eval');
    let outcome;
    try {
      outcome = await runEval(dataset, settings, (done, total) => progress.update(done, total));
    } finally {
      progress.finish();
    }
    const report = buildReport(outcome, flags.data, notes);
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatReport(report));
  } catch (err) {
    if (err instanceof TracegateError) {
      process.stderr.write(`tracegate eval: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

/** Adds `tracegate eval` (offline replay evaluation of the routing policies) to the program. */
export function withEvalCommand(program: Command): Command {
  program
    .command('eval')
    .description('replay a scored data set through the routing policies and compare them with fixed-model baselines')
    .requiredOption('--data <file>', 'JSONL: {"prompt", "scores": {model: 0..1}, "costs": {model: dollars}, "split"?} per line')
    .option('--policy <names>', 'policy to run (repeatable or comma-separated; default: adaptive, contextual, learned)', collectNames)
    .option('--seeds <n>', 'runs per policy and cost weight, each with its own random order', positiveInt, 5)
    .option('--lambdas <list>', `cost weights λ: utility = quality − λ × dollars per query (default: ${DEFAULT_LAMBDAS.join(',')})`, lambdaList)
    .option('--cost-weight <x>', 'one cost weight (shorthand for --lambdas X)', nonNegative)
    .option('--split-train <name>', 'train/test mode: load this split as full-information traces first')
    .option('--split-test <name>', 'train/test mode: then route and score this split')
    .option(
      '--warm-start',
      'load the train split as offline evidence (a prior of --prior-weight, as `tracegate import --eval` does), then route the test split online (splits: train/test unless named)',
    )
    .option('--prior-weight <n>', 'router.priorWeight: offline evidence counts as at most N observations per class × model', nonNegative, defaultPriorWeight())
    .option('--half-life <n>', 'policy forgetting half-life in observations (0 = never forget)', nonNegative, defaultHalfLife())
    .option('--min-samples <n>', 'PolicyOptions.minSamples', nonNegativeInt, 5)
    .option('--update-every <n>', 'call updateFromTraces() after every N routed queries (0 = never)', nonNegativeInt, 100)
    .option('--feedback-rate <p>', 'the share of routed answers whose score reaches the policy as a user\'s rating', share, 1)
    .option('--judge-rate <r>', 'a simulated judge scores this share of the other answers', share, 0)
    .option('--judge-noise <s>', 'the simulated judge gives the wrong score with this probability', share, 0)
    .option('--shadow-rate <q>', 'a simulated shadow call (judged with the served answer) on this share of requests', share, 0)
    .option('--judge-model <key>', "the judge's model: a judge call costs what it costs on the query (default: the priciest model)")
    .option(
      '--drift <kind>',
      "halfway through each run the most chosen model starts failing every request ('break') or answering every request wrong ('degrade'); the report shows how fast it is left",
      driftKind,
    )
    .option('--config <file>', "classify the prompts with this config's router.classes rules (only the rules are read)")
    .option('--json', 'print one JSON object instead of tables')
    .action(evalCommand);
  return program;
}
