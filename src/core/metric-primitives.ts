import type { Metric } from 'prom-client';

/**
 * Counters and histograms whose hot path only adds to numbers. prom-client's own `inc`/`observe`
 * validate and hash the label values on every call (six calls per request); these
 * resolve a label set to its child once, and prom-client reads them only when /metrics is scraped
 * (a registry takes any object with a name and `get()`).
 */

type LabelValues = Record<string, string>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: MetricValue[];
}

export interface CounterChild {
  inc(value?: number): void;
}

export interface HistogramChild {
  observe(value: number): void;
}

abstract class Labeled<Child> {
  private readonly children = new Map<string, { labels: LabelValues; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  /** The child for these label values (in `labelNames` order), made on first use. */
  labels(...values: string[]): Child {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      const labels: LabelValues = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      entry = { labels, child: this.newChild() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract newChild(): Child;
  protected abstract values(labels: LabelValues, child: Child): MetricValue[];
  protected abstract readonly type: 'counter' | 'histogram';

  async get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) values.push(...this.values(labels, child));
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }

  reset(): void {
    this.children.clear();
  }

  /** For `Registry.registerMetric`, which reads only `name` and `get()`. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}

class CounterValue implements CounterChild {
  value = 0;
  inc(value = 1): void {
    this.value += value;
  }
}

export class FastCounter extends Labeled<CounterValue> {
  protected readonly type = 'counter';
  protected newChild(): CounterValue {
    return new CounterValue();
  }
  protected values(labels: LabelValues, child: CounterValue): MetricValue[] {
    return [{ labels, value: child.value }];
  }
}

class HistogramValue implements HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
  }
}

export class FastHistogram extends Labeled<HistogramValue> {
  protected readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], private readonly bounds: readonly number[]) {
    super(name, help, labelNames);
  }
  protected newChild(): HistogramValue {
    return new HistogramValue(this.bounds);
  }
  protected values(labels: LabelValues, child: HistogramValue): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += child.counts[i]!;
      out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    out.push({ labels: { ...labels, le: '+Inf' }, value: child.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: child.count, metricName: `${this.name}_count` });
    return out;
  }
}
