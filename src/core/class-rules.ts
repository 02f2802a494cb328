import { z } from 'zod';

/**
 * `router.classes`: named rules tried in order before the built-in classifier. A rule matches when
 * every condition it gives holds (write two rules with the same name for "either"); the first rule
 * that matches names the request's query class.
 */
export interface ClassRule {
  /** The query class of a request that matches (a header-safe name). */
  name: string;
  /** A regular expression (case-insensitive) found in the last user message. */
  user?: string;
  /** A regular expression (case-insensitive) found in the system prompt (system and developer messages). */
  system?: string;
  /** At least / at most this many messages in the request. */
  minMessages?: number;
  maxMessages?: number;
  /** `tools` (or `functions`) given, or not. */
  tools?: boolean;
  /** An image in some message, or none. */
  images?: boolean;
  /** `response_format` given, or not. */
  responseFormat?: boolean;
  /** Each of these keys of the request's `metadata` has exactly this (string) value. */
  metadata?: Record<string, string>;
  /** The request's `x-tracegate-class` header has exactly this value. */
  header?: string;
}


const NAME = /^[\w.:-]{1,64}$/;
const CONDITIONS = ['user', 'system', 'minMessages', 'maxMessages', 'tools', 'images', 'responseFormat', 'metadata', 'header'] as const;
const KEYS = new Set<string>(['name', ...CONDITIONS]);

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function regexProblem(source: unknown, key: string): string | null {
  if (typeof source !== 'string' || source === '') return `"${key}" must be a non-empty regular expression (a string)`;
  try {
    new RegExp(source, 'i');
    return null;
  } catch (err) {
    return `"${key}" is not a valid regular expression: ${(err as Error).message}`;
  }
}

/** What is wrong with one rule, as messages without the rule's name. */
export function ruleProblems(raw: unknown): string[] {
  if (!isRecord(raw)) return ['must be an object, e.g. {"name": "support", "system": "customer support"}'];
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!KEYS.has(key)) problems.push(`unknown key "${key}" (known: ${[...KEYS].join(', ')})`);
  }
  if (typeof raw.name !== 'string' || !NAME.test(raw.name)) {
    problems.push('"name" must be 1–64 letters, digits, "_", ".", ":" or "-"');
  }
  for (const key of ['user', 'system'] as const) {
    if (raw[key] !== undefined) {
      const problem = regexProblem(raw[key], key);
      if (problem) problems.push(problem);
    }
  }
  for (const key of ['minMessages', 'maxMessages'] as const) {
    const v = raw[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
      problems.push(`"${key}" must be a non-negative integer`);
    }
  }
  for (const key of ['tools', 'images', 'responseFormat'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'boolean') problems.push(`"${key}" must be true or false`);
  }
  if (raw.metadata !== undefined) {
    if (!isRecord(raw.metadata) || Object.keys(raw.metadata).length === 0) {
      problems.push('"metadata" must be a non-empty object of key → string value');
    } else {
      for (const [k, v] of Object.entries(raw.metadata)) {
        if (typeof v !== 'string') problems.push(`"metadata.${k}" must be a string`);
      }
    }
  }
  if (raw.header !== undefined && (typeof raw.header !== 'string' || raw.header === '')) {
    problems.push('"header" must be a non-empty string');
  }
  if (!CONDITIONS.some((key) => raw[key] !== undefined)) {
    problems.push(`needs at least one condition (${CONDITIONS.join(', ')})`);
  }
  return problems;
}

/** The zod schema of `router.classes`: every problem names its rule. */
export const classRulesSchema = z
  .array(z.unknown())
  .superRefine((rules, ctx) => {
    rules.forEach((raw, i) => {
      const name = isRecord(raw) && typeof raw.name === 'string' ? `"${raw.name}"` : `#${i + 1}`;
      for (const problem of ruleProblems(raw)) {
        ctx.addIssue({ code: 'custom', path: [i], message: `rule ${name}: ${problem}` });
      }
    });
  })
  .transform((rules) => rules as ClassRule[]);
