import type { Command } from 'commander';
import type { Config } from '../core/config.js';
import { createRouterPolicy } from '../app/gateway.js';
import { promptContext } from '../routing/context.js';
import { ContextualPolicy, type Explanation } from '../routing/contextual.js';
import type { TraceStore } from '../traces/types.js';
import { checkedConfig, openDatabase, readingConfig, withDbOptions, type DbFlags } from './options.js';
import { UsageError } from '../core/errors.js';

interface ExplainFlags extends DbFlags {
  system?: string;
  classHeader?: string;
  policy?: string;
  json?: boolean;
}

const f3 = (x: number) => x.toFixed(3);
const usd = (x: number) => `$${x < 1 ? x.toFixed(6) : x.toFixed(2)}`;
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

function table(rows: string[][], right: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** The explanation as text: per model its predicted reward, cost, utility and the features that weigh most. */
export function formatExplanation(e: Explanation, costWeight: number): string {
  const rows = [['model', 'reward', '± sd', 'cost', 'utility', 'features that weigh most (contribution to the reward)']];
  const sorted = [...e.predictions].sort((a, b) => b.utility - a.utility);
  for (const p of sorted) {
    rows.push([
      `${p.model}${p.model === e.choice ? ' *' : ''}`,
      f3(p.reward),
      f3(p.sd),
      usd(p.costUsd),
      f3(p.utility),
      p.features.map((f) => `${f.feature} ${signed(f.contribution)}`).join(', '),
    ]);
  }
  return [
    `query class: ${e.queryClass}`,
    `utility = reward − ${costWeight} × dollars (router.costWeight); * = the choice without exploration`,
    '',
    table(rows, [false, true, true, true, true, false]),
    '',
  ].join('\n');
}

export async function explainCommand(prompt: string, flags: ExplainFlags): Promise<void> {
  const made = await readingConfig(flags);
  let config: Config = made.config;
  if (flags.policy !== undefined) config = checkedConfig({ ...config, router: { ...config.router, policy: flags.policy } }, 'config with --policy');
  // No SQLite file yet (no traffic): the policy explains with its priors only, and says so.
  let store: TraceStore | undefined;
  let note = made.note;
  try {
    store = await openDatabase(config.database, { mustExist: true });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    note = `${err.message}: the policy knows only its priors (configured prices)\n`;
  }
  try {
    const policy = createRouterPolicy(config, store);
    if (store !== undefined) await policy.updateFromTraces();
    const context = promptContext(prompt, { system: flags.system, rules: config.router.classes, classHeader: flags.classHeader });
    if (policy instanceof ContextualPolicy) {
      const explanation = policy.explain(context);
      process.stdout.write(flags.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${note}${formatExplanation(explanation, config.router.costWeight)}`);
      return;
    }
    // Per-class policies: the class's estimates (what they route on); features need the contextual policy.
    const snapshot = policy.snapshot().classes.find((c) => c.queryClass === context.queryClass);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ queryClass: context.queryClass, policy: policy.name, class: snapshot ?? null }, null, 2)}\n`);
      return;
    }
    const lines = [`${note}query class: ${context.queryClass}; policy ${policy.name} routes per class, not per query (features: --policy contextual)`];
    if (snapshot === undefined) lines.push('(no evidence for this class yet)');
    else {
      const rows = [['model', 'estimate', '± sd', 'cost', 'samples']];
      for (const a of [...snapshot.arms].sort((x, y) => y.estimate - x.estimate)) {
        rows.push([`${a.model}${a.model === snapshot.choice ? ' *' : ''}`, f3(a.estimate), f3(a.uncertainty), a.costUsd === null ? '-' : usd(a.costUsd), String(a.samples)]);
      }
      lines.push('', table(rows, [false, true, true, true, true]));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await store?.close();
  }
}

/** Adds `tracegate explain "prompt"`: what the policy predicts for each model on one query, and why. */
export function withExplainCommand(program: Command): Command {
  const cmd = program
    .command('explain')
    .description("show each model's predicted reward, cost and utility for a prompt, and the features that weigh most")
    .argument('<prompt>', 'the last user message')
    .option('--system <text>', 'a system prompt')
    .option('--class-header <name>', 'an x-tracegate-class header value (for router.classes rules that match on it)')
    .option('--policy <name>', 'explain with this policy instead of router.policy (e.g. contextual)')
    .option('--json', 'print the explanation as JSON');
  withDbOptions(cmd, false).action(explainCommand);
  return program;
}
