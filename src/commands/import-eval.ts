import { createHash } from 'node:crypto';
import { configSchema, type Config } from '../core/config.js';
import { loadDataset, type Dataset } from '../eval/dataset.js';
import { promptContext } from '../routing/context.js';
import { newTrace } from '../traces/trace-columns.js';
import type { TraceRecord } from '../traces/types.js';
import { UsageError, DatasetError } from '../core/errors.js';

/**
 * `tracegate import --eval FILE.jsonl`: offline evaluation results (the format of `tracegate eval`'s
 * data, e.g. RouterBench: a prompt with per-model scores and dollars) as full-information evidence:
 * one trace per prompt × mapped model, source `offline`, outcome success, feedback = the score,
 * cost = the dollars. Policies treat it as a prior of `router.priorWeight` observations per query
 * class × model, which live traffic overrides as it accumulates; `tracegate purge --offline` removes it.
 */

export interface EvalImportOptions {
  /** Data model name → configured model key (`--map name=key`); without any, names are kept as keys. */
  map: Record<string, string>;
  /** With a config: its class rules, prompt storage, model names and instance id apply. */
  config?: Config;
  /** Time of the traces (epoch ms). */
  now?: number;
}

export interface EvalImportPlan {
  traces: TraceRecord[];
  prompts: number;
  /** model key per imported data model. */
  models: Record<string, string>;
  /** Data models left out (not mapped, or mapped to a model the config does not have). */
  skipped: string[];
}

/** `--map name=key` (repeatable). */
export function collectMap(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.lastIndexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new UsageError(`--map takes name=key (got "${value}")`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function storedQuery(prompt: string, config: Config | undefined): string | null {
  const { storePrompts, truncateChars: chars } = (config ?? configSchema.parse({})).traces;
  if (storePrompts === 'none') return null;
  if (storePrompts === 'truncated' && prompt.length > chars) return prompt.slice(0, chars);
  return prompt;
}

/** The traces for a data set (ids hash the model key, line and prompt: importing a file twice adds nothing). */
export function planEvalImport(dataset: Dataset, options: EvalImportOptions): EvalImportPlan {
  const { map, config } = options;
  const mapped = Object.keys(map).length > 0;
  const unknown = Object.keys(map).filter((name) => !dataset.models.includes(name));
  if (unknown.length > 0) {
    throw new UsageError(`--map names ${unknown.map((n) => `"${n}"`).join(', ')}, not a model of ${dataset.file} (its models: ${dataset.models.join(', ')})`);
  }
  const models: Record<string, string> = {};
  const skipped: string[] = [];
  for (const name of dataset.models) {
    const key = mapped ? map[name] : name;
    if (key === undefined || (config !== undefined && config.models[key] === undefined)) skipped.push(name);
    else models[name] = key;
  }
  if (Object.keys(models).length === 0) {
    throw new UsageError(
      config !== undefined
        ? `no model of ${dataset.file} maps to a configured model: give --map name=key (configured: ${Object.keys(config.models).join(', ')})`
        : `no model of ${dataset.file} is mapped`,
    );
  }
  const time = options.now ?? Date.now();
  const rules = config?.router.classes ?? [];
  const traces: TraceRecord[] = [];
  for (const q of dataset.queries) {
    const queryClass = rules.length > 0 ? promptContext(q.prompt, { rules }).queryClass : q.queryClass;
    const query = storedQuery(q.prompt, config);
    dataset.models.forEach((name, i) => {
      const key = models[name];
      if (key === undefined) return;
      const id = `offline-${createHash('sha256').update(`${key}\u0000${q.line}\u0000${q.prompt}`).digest('hex').slice(0, 32)}`;
      traces.push(
        newTrace({
          id,
          time,
          requestId: `eval-line-${q.line}`,
          query,
          queryLength: q.prompt.length,
          queryClass,
          modelKey: key,
          upstreamModel: config?.models[key]?.model ?? name,
          routed: false,
          reason: 'offline',
          attempt: 1,
          outcome: 'success',
          latencyMs: 0,
          costUsd: q.costs[i] as number,
          feedback: q.scores[i] as number,
          feedbackTime: time,
          feedbackSource: 'offline',
          source: 'offline',
          instanceId: config?.instanceId ?? null,
        }),
      );
    });
  }
  return { traces, prompts: dataset.queries.length, models, skipped };
}

/** Reads and plans an evaluation file; a bad line is a UsageError naming it. */
export function readEvalImport(file: string, options: EvalImportOptions): EvalImportPlan {
  let dataset: Dataset;
  try {
    dataset = loadDataset(file);
  } catch (err) {
    if (err instanceof DatasetError) throw new UsageError(err.message);
    throw err;
  }
  return planEvalImport(dataset, options);
}
