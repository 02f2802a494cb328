import { AdaptivePolicy } from './adaptive.js';
import { ContextualPolicy } from './contextual.js';
import { HeuristicPolicy } from './heuristic.js';
import { TraceDrivenPolicy } from './learned.js';
import type { PolicyOptions, RouterPolicy } from './types.js';
import { UnknownPolicyError } from '../core/errors.js';

export type PolicyFactory = (options: PolicyOptions) => RouterPolicy;

const factories = new Map<string, PolicyFactory>();

/** Adds a named policy; a name can be registered once. */
export function registerPolicy(name: string, factory: PolicyFactory): void {
  if (factories.has(name)) throw new Error(`router policy "${name}" is already registered`);
  factories.set(name, factory);
}

export function createPolicy(name: string, options: PolicyOptions): RouterPolicy {
  const factory = factories.get(name);
  if (factory === undefined) throw new UnknownPolicyError(name, policyNames());
  return factory(options);
}

export function policyNames(): string[] {
  return [...factories.keys()];
}

registerPolicy('learned', (options) => new TraceDrivenPolicy(options));
registerPolicy('heuristic', (options) => new HeuristicPolicy(options));
registerPolicy('adaptive', (options) => new AdaptivePolicy(options));
registerPolicy('contextual', (options) => new ContextualPolicy(options));
