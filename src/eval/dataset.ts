import { readFileSync } from 'node:fs';
import { classifyQuery } from '../routing/classify.js';
import { DatasetError } from '../core/errors.js';

/**
 * An evaluation data set: one JSON object per line,
 * `{"prompt": "...", "scores": {"model": 0..1, ...}, "costs": {"model": dollars, ...}, "split"?: "..."}`
 * (other keys, such as `id` or `task`, are ignored). Every line must name the same models (in `scores` and `costs`) as the first.
 */

export interface EvalQuery {
  /** 1-based line number in the file. */
  line: number;
  prompt: string;
  /** classifyQuery(prompt), computed once. */
  queryClass: string;
  split: string | undefined;
  /** Indexed like Dataset.models. */
  scores: Float64Array;
  /** Dollars, indexed like Dataset.models. */
  costs: Float64Array;
}

export interface Dataset {
  file: string;
  /** Model keys in the order of the first line's `scores`. */
  models: string[];
  queries: EvalQuery[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameKeys(keys: readonly string[], models: readonly string[], where: string, field: string): void {
  const missing = models.filter((m) => !keys.includes(m));
  const extra = keys.filter((k) => !models.includes(k));
  if (missing.length === 0 && extra.length === 0) return;
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing ${missing.map((m) => JSON.stringify(m)).join(', ')}`);
  if (extra.length > 0) parts.push(`unexpected ${extra.map((m) => JSON.stringify(m)).join(', ')}`);
  throw new DatasetError(`${where}: "${field}" models differ from the first line's (${parts.join('; ')})`);
}

/** Parses one line; `models` is undefined for the first line, whose `scores` fix the model list. */
export function parseLine(text: string, line: number, file: string, models: readonly string[] | undefined): {
  models: string[];
  query: EvalQuery;
} {
  const where = `${file}:${line}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DatasetError(`${where}: invalid JSON (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw new DatasetError(`${where}: expected a JSON object`);
  const { prompt, scores, costs, split } = raw;
  if (typeof prompt !== 'string') throw new DatasetError(`${where}: "prompt" must be a string`);
  if (!isRecord(scores)) throw new DatasetError(`${where}: "scores" must be an object of model → score`);
  if (!isRecord(costs)) throw new DatasetError(`${where}: "costs" must be an object of model → dollars`);
  if (split !== undefined && typeof split !== 'string') throw new DatasetError(`${where}: "split" must be a string`);

  const keys = models ? [...models] : Object.keys(scores);
  if (keys.length === 0) throw new DatasetError(`${where}: "scores" names no model`);
  if (models) sameKeys(Object.keys(scores), models, where, 'scores');
  sameKeys(Object.keys(costs), keys, where, 'costs');

  const scoreArray = new Float64Array(keys.length);
  const costArray = new Float64Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const model = keys[i] as string;
    const score = scores[model];
    if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
      throw new DatasetError(`${where}: score of "${model}" must be a number in [0, 1], got ${JSON.stringify(score)}`);
    }
    const cost = costs[model];
    if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
      throw new DatasetError(`${where}: cost of "${model}" must be a non-negative number of dollars, got ${JSON.stringify(cost)}`);
    }
    scoreArray[i] = score;
    costArray[i] = cost;
  }
  return {
    models: keys,
    query: { line, prompt, queryClass: classifyQuery(prompt), split, scores: scoreArray, costs: costArray },
  };
}

/** Parses a whole JSONL text (blank lines are skipped). */
export function parseDataset(text: string, file = '<data>'): Dataset {
  let models: string[] | undefined;
  const queries: EvalQuery[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const content = (lines[i] as string).trim();
    if (content === '') continue;
    const parsed = parseLine(content, i + 1, file, models);
    models ??= parsed.models;
    queries.push(parsed.query);
  }
  if (models === undefined) throw new DatasetError(`${file}: no queries (the file is empty)`);
  return { file, models, queries };
}

export function loadDataset(file: string): Dataset {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DatasetError(`cannot read data file ${file}: ${(err as Error).message}`);
  }
  return parseDataset(text, file);
}

/** The queries of one split; an error if there are none. */
export function splitOf(dataset: Dataset, split: string): EvalQuery[] {
  const queries = dataset.queries.filter((q) => q.split === split);
  if (queries.length === 0) {
    const known = [...new Set(dataset.queries.map((q) => q.split).filter((s) => s !== undefined))];
    throw new DatasetError(
      `${dataset.file}: no query has split "${split}" (splits present: ${known.length > 0 ? known.join(', ') : 'none'})`,
    );
  }
  return queries;
}
