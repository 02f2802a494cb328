import type { Command } from 'commander';
import { createRouterPolicy } from '../app/gateway.js';
import { statsJson, type StatsJson } from '../reports/stats.js';
import { openDatabase, openOrReport, readingConfig, withDbOptions, withRangeOptions, type DbFlags } from './options.js';

interface StatsFlags extends DbFlags {
  since?: number;
  until?: number;
  json?: boolean;
}

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const ms = (x: number | null) => (x === null ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);
const usd = (x: number) => `$${x < 1 ? x.toFixed(6) : x.toFixed(2)}`;
const num = (x: number | null, digits = 2) => (x === null ? '-' : x.toFixed(digits));

/** Columns padded to their widest cell; numbers right-aligned. */
function table(header: string[], rows: string[][], right: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The routing table as text: per class × model what the store recorded, and the decision per class. */
export function formatStats(s: StatsJson): string {
  const t = s.totals;
  const out: string[] = [
    `policy ${s.policy}: ${s.total_traces} trace${s.total_traces === 1 ? '' : 's'}, ${t.successes} successful, ${t.feedback_count} with feedback, ` +
      `${t.prompt_tokens} + ${t.completion_tokens} tokens, ${usd(t.cost_usd)}`,
    '',
  ];
  const header = ['class', 'model', 'traces', 'success', 'feedback (n)', 'p50', 'p95', 'cost', 'estimate', 'decision'];
  const right = [false, false, true, true, true, true, true, true, true, false];
  const rows: string[][] = [];
  for (const [name, c] of Object.entries(s.classes)) {
    let first = true;
    for (const [model, m] of Object.entries(c.models)) {
      rows.push([
        first ? name : '',
        model,
        String(m.count),
        pct(m.success_rate),
        m.mean_feedback === null ? '-' : `${num(m.mean_feedback)} (${m.feedback_count})`,
        ms(m.latency_p50_ms),
        ms(m.latency_p95_ms),
        usd(m.cost_usd),
        m.estimate === null ? '-' : `${num(m.estimate)} ±${num(m.uncertainty)}`,
        c.decision === model ? '<- chosen' : '',
      ]);
      first = false;
    }
  }
  out.push(rows.length > 0 ? table(header, rows, right) : '(no traces yet)');
  const decisions = Object.entries(s.classes).map(
    ([name, c]) => `  ${name} -> ${c.decision ?? '(none)'}${c.confidence === null ? '' : ` (confidence ${Number(c.confidence.toFixed(2))})`}`,
  );
  if (decisions.length > 0) out.push('', 'decision per class:', ...decisions);
  if (s.features !== undefined) {
    out.push('', 'features that weigh most in each model\'s predicted reward:');
    for (const [model, features] of Object.entries(s.features)) {
      out.push(`  ${model}: ${features.map((f) => `${f.feature} ${f.weight >= 0 ? '+' : '−'}${Math.abs(f.weight).toFixed(3)}`).join('; ')}`);
    }
  }
  return `${out.join('\n')}\n`;
}

export async function statsCommand(flags: StatsFlags): Promise<void> {
  const { config, note } = await readingConfig(flags);
  if (note !== '') process.stderr.write(note);
  const store = await openOrReport('stats', () => openDatabase(config.database, { mustExist: true }));
  if (store === undefined) return;
  try {
    // The policy as a gateway would start with it: built from the config, warmed from every trace.
    const policy = createRouterPolicy(config, store);
    await policy.updateFromTraces();
    const summary = await store.stats({ since: flags.since, until: flags.until });
    // No server, so no circuit breaker: every model is routable.
    const cooldowns = Object.fromEntries(Object.keys(config.models).map((k) => [k, 0]));
    const json = statsJson(summary, policy.snapshot(), cooldowns);
    process.stdout.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : formatStats(json));
  } finally {
    await store.close();
  }
}

/** Adds `tracegate stats`: the routing table from the database file, no server needed. */
export function withStatsCommand(program: Command): Command {
  const cmd = program
    .command('stats')
    .description('print the routing table from the trace database: per query class × model, and the decision per class');
  withRangeOptions(withDbOptions(cmd, false))
    .option('--json', 'print the JSON of GET /stats instead of a table')
    .action(statsCommand);
  return program;
}
