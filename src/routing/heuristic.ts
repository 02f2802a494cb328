import { codePointLength, hasCode, hasMath, hasReasoning } from './classify.js';
import type {
  Decision,
  FeedbackObservation,
  Observation,
  PolicyOptions,
  PolicySnapshot,
  RouterPolicy,
  RoutingContext,
  UpdateSummary,
} from './types.js';

const SHORT_BELOW = 50;
const LONG_ABOVE = 500;

/**
 * The original's HeuristicRouter: static rules over the query and model sizes (`sizeB`).
 * In order: code → a "code"/"coder" model, else largest; math → largest;
 * under 50 characters → smallest; over 500 or reasoning words → largest; else default → fallback → first.
 */
export class HeuristicPolicy implements RouterPolicy {
  readonly name = 'heuristic';

  private readonly sizes = new Map<string, number>();
  private readonly defaultModel: string;
  private readonly fallbackModel: string;
  /** class → model → how many times select() chose it (for the snapshot's share). */
  private readonly decisions = new Map<string, Map<string, number>>();

  constructor(options: PolicyOptions) {
    for (const model of options.models) if (model.sizeB !== undefined) this.sizes.set(model.key, model.sizeB);
    this.defaultModel = options.defaultModel ?? '';
    this.fallbackModel = options.fallbackModel ?? '';
  }

  select(ctx: RoutingContext): Decision {
    const decision = this.choose(ctx);
    if (decision.model !== '') {
      let byModel = this.decisions.get(ctx.queryClass);
      if (byModel === undefined) {
        byModel = new Map();
        this.decisions.set(ctx.queryClass, byModel);
      }
      byModel.set(decision.model, (byModel.get(decision.model) ?? 0) + 1);
    }
    return decision;
  }

  private choose(ctx: RoutingContext): Decision {
    const available = ctx.available;
    if (available.length === 0) {
      if (this.defaultModel) return { model: this.defaultModel, reason: 'default' };
      if (this.fallbackModel) return { model: this.fallbackModel, reason: 'fallback' };
      return { model: '', reason: 'default' };
    }
    const query = ctx.query;
    if (hasCode(query)) {
      return this.rule(findByTag(available, 'code') ?? findByTag(available, 'coder') ?? this.largest(available));
    }
    if (hasMath(query)) return this.rule(this.largest(available));
    const length = codePointLength(query);
    if (length < SHORT_BELOW) return this.rule(this.smallest(available));
    if (length > LONG_ABOVE || hasReasoning(query)) return this.rule(this.largest(available));
    if (this.defaultModel && available.includes(this.defaultModel)) return { model: this.defaultModel, reason: 'default' };
    if (this.fallbackModel && available.includes(this.fallbackModel)) {
      return { model: this.fallbackModel, reason: 'fallback' };
    }
    return { model: available[0] as string, reason: 'fallback' };
  }

  private rule(model: string): Decision {
    return { model, reason: 'heuristic' };
  }

  /** The first model unless a later one is strictly larger; a model without a size counts as 0. */
  private largest(available: readonly string[]): string {
    let best = available[0] as string;
    let bestSize = this.sizes.get(best) ?? 0;
    for (let i = 1; i < available.length; i++) {
      const key = available[i] as string;
      const size = this.sizes.get(key) ?? 0;
      if (size > bestSize) {
        best = key;
        bestSize = size;
      }
    }
    return best;
  }

  /** As the original: models without a size are skipped, except that the first one stands if no other has a size. */
  private smallest(available: readonly string[]): string {
    let best = available[0] as string;
    let bestSize = this.sizes.get(best) || Infinity;
    for (let i = 1; i < available.length; i++) {
      const key = available[i] as string;
      const size = this.sizes.get(key) ?? 0;
      if (size > 0 && size < bestSize) {
        best = key;
        bestSize = size;
      }
    }
    return best;
  }

  observe(_observation: Observation): void {}

  observeFeedback(_feedback: FeedbackObservation): void {}

  async updateFromTraces(): Promise<UpdateSummary> {
    return { updated: false, reason: 'static policy' };
  }

  snapshot(): PolicySnapshot {
    const classes = [];
    for (const [queryClass, byModel] of this.decisions) {
      let total = 0;
      let choice = '';
      let most = 0;
      for (const [model, n] of byModel) {
        total += n;
        if (n > most) {
          most = n;
          choice = model;
        }
      }
      const arms = [...byModel].map(([model, n]) => ({
        model,
        estimate: 0,
        uncertainty: 0.5,
        costUsd: null,
        samples: 0,
        share: n / total,
      }));
      classes.push({ queryClass, choice, confidence: 0, arms });
    }
    return { policy: this.name, classes };
  }
}

/** The first model whose key contains `tag`, ignoring case. */
function findByTag(available: readonly string[], tag: string): string | undefined {
  const lower = tag.toLowerCase();
  return available.find((key) => key.toLowerCase().includes(lower));
}
