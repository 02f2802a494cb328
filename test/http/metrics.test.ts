import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;
let other: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, {
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large', circuitBreaker: { failures: 0 } },
  });
  // A second gateway in the same process: its metrics are its own.
  other = await startTestGateway(upstream, { router: { policy: 'learned', defaultModel: 'small', updateIntervalSeconds: 0.1 } });
});
afterAll(async () => {
  await gw.stop();
  await other.stop();
  await upstream.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, k, v] of m![2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[k!] = v!;
    samples.push({ name: m![1]!, labels, value: Number(m![3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels (0 when absent, as Prometheus would read it). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

async function scrape(target: TestGateway) {
  const res = await request(`${target.url}/metrics`);
  const text = await res.body.text();
  return { status: res.statusCode, type: res.headers['content-type'], text, samples: parseMetrics(text) };
}

async function ask(model: string, content: string) {
  const { response } = await gw.client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).withResponse();
  return { traceId: response.headers.get('x-trace-id')!, reason: response.headers.get('x-router-reason')!, model: response.headers.get('x-router-model')! };
}

async function feedback(traceId: string, score: number) {
  const res = await request(`${gw.url}/feedback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ trace_id: traceId, feedback: score }),
  });
  expect(res.statusCode).toBe(200);
  await res.body.dump();
}

describe('GET /metrics', () => {
  it('serves the Prometheus text format with the process metrics and the tracegate metrics', async () => {
    const { status, type, text } = await scrape(gw);
    expect(status).toBe(200);
    expect(type).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of [
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
      'tracegate_requests_total',
      'tracegate_upstream_latency_seconds',
      'tracegate_upstream_ttfb_seconds',
      'tracegate_tokens_total',
      'tracegate_cost_usd_total',
      'tracegate_failovers_total',
      'tracegate_feedback_total',
      'tracegate_policy_updates_total',
      'tracegate_fleet_feedback_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('counts attempts, latency, tokens, cost, failovers, feedback and policy updates after traffic', async () => {
    const routed = [await ask('auto', 'hi'), await ask('auto', 'hello'), await ask('auto', 'hey')];
    for (const r of routed) expect(r.model).toBe('small');
    await ask('large', 'def f(): `x`');

    // small fails with a 500: the request fails over to large.
    upstream.script('small-model', { kind: 'status', status: 500 });
    const failedOver = await ask('auto', 'yo');
    upstream.script('small-model', (r) => (r.body.stream ? { kind: 'stream' } : { kind: 'answer' }));
    expect(failedOver).toMatchObject({ model: 'large', reason: 'failover' });

    // A stream with a usage chunk, pinned to small.
    const stream = await gw.client.chat.completions.create({
      model: 'small',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream please' }],
    });
    for await (const _ of stream) void _;

    await feedback(routed[0]!.traceId, 1);
    await feedback(routed[1]!.traceId, 0.5);
    await feedback(routed[1]!.traceId, 0); // a change of mind is another feedback received
    await feedback(failedOver.traceId, 1);

    const { samples } = await scrape(gw);
    const requests = (labels: Record<string, string>) => valueOf(samples, 'tracegate_requests_total', labels);
    /** Summed over the reasons a routed first try may carry (`default`, `learned`, …). */
    const routedFirstTries = (outcome: string) =>
      samples
        .filter((s) => s.name === 'tracegate_requests_total' && s.labels.model === 'small' && s.labels.class === 'short')
        .filter((s) => s.labels.outcome === outcome && !['pinned', 'failover'].includes(s.labels.reason!))
        .reduce((n, s) => n + s.value, 0);
    expect(routedFirstTries('success')).toBe(3);
    expect(requests({ model: 'small', class: 'short', reason: routed[0]!.reason, outcome: 'success' })).toBeGreaterThanOrEqual(1);
    expect(routedFirstTries('error')).toBe(1);
    expect(requests({ model: 'large', class: 'short', reason: 'failover', outcome: 'success' })).toBe(1);
    expect(requests({ model: 'large', class: 'code', reason: 'pinned', outcome: 'success' })).toBe(1);
    expect(requests({ model: 'small', class: 'short', reason: 'pinned', outcome: 'success' })).toBe(1);
    const total = samples.filter((s) => s.name === 'tracegate_requests_total').reduce((n, s) => n + s.value, 0);
    const traces = await gw.gateway.store.list({});
    expect(total).toBe(traces.length);

    expect(valueOf(samples, 'tracegate_failovers_total', { from: 'small', to: 'large' })).toBe(1);
    expect(valueOf(samples, 'tracegate_feedback_total', { model: 'small', source: 'human' })).toBe(3);
    expect(valueOf(samples, 'tracegate_feedback_total', { model: 'large', source: 'human' })).toBe(1);
    // Every prompt differed: nothing was regenerated.
    expect(samples.filter((s) => s.name === 'tracegate_feedback_total' && s.labels.source !== 'human')).toEqual([]);
    expect(valueOf(samples, 'tracegate_policy_updates_total')).toBe(1); // at boot

    for (const model of ['small', 'large']) {
      const mine = traces.filter((t) => t.modelKey === model);
      expect(valueOf(samples, 'tracegate_upstream_latency_seconds_count', { model })).toBe(mine.length);
      const latencySum = mine.reduce((s, t) => s + t.latencyMs / 1000, 0);
      expect(valueOf(samples, 'tracegate_upstream_latency_seconds_sum', { model })).toBeCloseTo(latencySum, 6);
      expect(valueOf(samples, 'tracegate_upstream_latency_seconds_bucket', { model, le: '+Inf' })).toBe(mine.length);
      expect(valueOf(samples, 'tracegate_upstream_ttfb_seconds_count', { model })).toBe(mine.filter((t) => t.ttfbMs !== null).length);
      const sum = (f: (t: (typeof traces)[number]) => number | null) => mine.reduce((s, t) => s + (f(t) ?? 0), 0);
      expect(valueOf(samples, 'tracegate_tokens_total', { model, kind: 'prompt' })).toBe(sum((t) => t.promptTokens));
      expect(valueOf(samples, 'tracegate_tokens_total', { model, kind: 'completion' })).toBe(sum((t) => t.completionTokens));
      expect(valueOf(samples, 'tracegate_cost_usd_total', { model })).toBeCloseTo(sum((t) => t.costUsd), 12);
    }
    // The stream's usage chunk was counted: 11 prompt tokens.
    expect(traces.find((t) => t.reason === 'pinned' && t.modelKey === 'small')!.promptTokens).toBe(11);
    expect(valueOf(samples, 'tracegate_tokens_total', { model: 'small', kind: 'prompt' })).toBeGreaterThan(11);
  });

  it('keeps each gateway of a process to its own counts, and counts periodic policy updates', async () => {
    const { samples } = await scrape(other);
    expect(samples.filter((s) => s.name === 'tracegate_requests_total')).toEqual([]);
    await expect.poll(async () => valueOf((await scrape(other)).samples, 'tracegate_policy_updates_total'), { timeout: 3000 }).toBeGreaterThanOrEqual(3);
  });

  it('405s other methods', async () => {
    const res = await request(`${gw.url}/metrics`, { method: 'POST' });
    expect(res.statusCode).toBe(405);
    await res.body.dump();
  });
});
