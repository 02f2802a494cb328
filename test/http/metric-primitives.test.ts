import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../src/core/metric-primitives.js';

describe('the cheap counters and histograms behind /metrics', () => {
  it('render as Prometheus counters and cumulative histograms, per label set', async () => {
    const registry = new Registry();
    const counter = new FastCounter('t_requests_total', 'Requests.', ['model', 'outcome']);
    const histogram = new FastHistogram('t_latency_seconds', 'Latency.', ['model'], [0.1, 1]);
    registry.registerMetric(counter.asMetric());
    registry.registerMetric(histogram.asMetric());
    counter.labels('a', 'success').inc();
    counter.labels('a', 'success').inc(2);
    counter.labels('b', 'error').inc();
    for (const v of [0.05, 0.1, 0.5, 3, Number.NaN]) histogram.labels('a').observe(v);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE t_requests_total counter');
    expect(text).toContain('t_requests_total{model="a",outcome="success"} 3');
    expect(text).toContain('t_requests_total{model="b",outcome="error"} 1');
    expect(text).toContain('# TYPE t_latency_seconds histogram');
    // A value equal to a bound is in that bucket; buckets are cumulative; NaN is not counted.
    expect(text).toContain('t_latency_seconds_bucket{model="a",le="0.1"} 2');
    expect(text).toContain('t_latency_seconds_bucket{model="a",le="1"} 3');
    expect(text).toContain('t_latency_seconds_bucket{model="a",le="+Inf"} 4');
    expect(text).toContain('t_latency_seconds_count{model="a"} 4');
    expect(text).toMatch(/t_latency_seconds_sum\{model="a"\} 3\.65/);
  });
});
