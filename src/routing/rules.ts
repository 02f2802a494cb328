import { isRecord, type ClassRule } from '../core/class-rules.js';

/** The header a client can name its query class with (matched by a rule's `header`). */
export const CLASS_HEADER = 'x-tracegate-class';

/** The facts of a request that rules look at. */
export interface RuleInput {
  query: string;
  system: string;
  messageCount: number;
  tools: boolean;
  images: boolean;
  responseFormat: boolean;
  metadata: unknown;
  header: string | undefined;
}

interface CompiledRule {
  name: string;
  user?: RegExp;
  system?: RegExp;
  minMessages?: number;
  maxMessages?: number;
  tools?: boolean;
  images?: boolean;
  responseFormat?: boolean;
  metadata?: [string, string][];
  header?: string;
}

const compiled = new WeakMap<readonly ClassRule[], CompiledRule[]>();

/** The rules with their regular expressions built (once per rules array). */
function compile(rules: readonly ClassRule[]): CompiledRule[] {
  let out = compiled.get(rules);
  if (out === undefined) {
    out = rules.map((r) => ({
      name: r.name,
      user: r.user !== undefined ? new RegExp(r.user, 'i') : undefined,
      system: r.system !== undefined ? new RegExp(r.system, 'i') : undefined,
      minMessages: r.minMessages,
      maxMessages: r.maxMessages,
      tools: r.tools,
      images: r.images,
      responseFormat: r.responseFormat,
      metadata: r.metadata !== undefined ? Object.entries(r.metadata) : undefined,
      header: r.header,
    }));
    compiled.set(rules, out);
  }
  return out;
}

function matches(rule: CompiledRule, input: RuleInput): boolean {
  if (rule.header !== undefined && input.header !== rule.header) return false;
  if (rule.minMessages !== undefined && input.messageCount < rule.minMessages) return false;
  if (rule.maxMessages !== undefined && input.messageCount > rule.maxMessages) return false;
  if (rule.tools !== undefined && input.tools !== rule.tools) return false;
  if (rule.images !== undefined && input.images !== rule.images) return false;
  if (rule.responseFormat !== undefined && input.responseFormat !== rule.responseFormat) return false;
  if (rule.metadata !== undefined) {
    const metadata = input.metadata;
    if (!isRecord(metadata)) return false;
    for (const [key, value] of rule.metadata) if (metadata[key] !== value) return false;
  }
  if (rule.system !== undefined && !rule.system.test(input.system)) return false;
  if (rule.user !== undefined && !rule.user.test(input.query)) return false;
  return true;
}

/** The name of the first rule that matches, or undefined. */
export function matchRule(rules: readonly ClassRule[], input: RuleInput): string | undefined {
  if (rules.length === 0) return undefined;
  for (const rule of compile(rules)) if (matches(rule, input)) return rule.name;
  return undefined;
}
