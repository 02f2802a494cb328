import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { syntheticRows, toJsonl, writeTemp } from '../eval/synthetic.js';
import { tempDir } from '../helpers/gateway.js';
import { cli } from '../helpers/process.js';

function setup(router: Record<string, unknown> = {}) {
  const dir = tempDir();
  const db = join(dir, 'traces.db');
  const config = join(dir, 'config.json');
  const model = (name: string, price: number) => ({ baseURL: 'http://127.0.0.1:9/v1', model: name, inputCostPerMTok: price, outputCostPerMTok: price });
  writeFileSync(
    config,
    JSON.stringify({
      database: { path: db },
      models: { premium: model('premium-model', 5), budget: model('budget-model', 1) },
      router: { policy: 'contextual', costWeight: 0, priorWeight: 100, ...router },
      logging: { level: 'silent' },
    }),
  );
  return { dir, db, config };
}

describe('offline evidence from the command line', () => {
  const data = writeTemp('offline.jsonl', toJsonl(syntheticRows(40)));

  it('import --eval loads evaluation results as offline traces (mapped to configured models), once', async () => {
    const { db, config } = setup({ classes: [{ name: 'snippet', user: '```' }] });
    const first = await cli('import', '--eval', data, '--config', config, '--map', 'alpha=premium', '--map', 'gamma=budget');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('imported 160 offline traces (80 prompts × 2 models: alpha → premium, gamma → budget)');
    expect(first.stdout).toContain('left out (not mapped to a configured model): beta');
    const again = await cli('import', '--eval', data, '--config', config, '--map', 'alpha=premium', '--map', 'gamma=budget');
    expect(again.stdout).toContain('imported 0 offline traces');
    expect(again.stdout).toContain('skipped 160 already there');

    const store = new SqliteTraceStore({ path: db });
    const traces = await store.list({});
    expect(traces).toHaveLength(160);
    expect(traces.every((t) => t.source === 'offline' && t.outcome === 'success' && t.reason === 'offline' && !t.routed)).toBe(true);
    const t = traces.find((x) => x.modelKey === 'premium' && x.queryClass === 'snippet')!;
    expect(t.upstreamModel).toBe('premium-model');
    expect(t.feedback).toBe(1);
    expect(t.costUsd).toBeCloseTo(0.004, 12);
    // The config's class rules name the class, and the prompt is kept as the config says (truncated to 200).
    expect(new Set(traces.map((x) => x.queryClass))).toEqual(new Set(['snippet', 'long']));
    expect(traces.every((x) => x.query !== null && x.query.length <= 200)).toBe(true);
    await store.close();
  });

  it('import --eval refuses a map to an unknown data model, or data no configured model matches', async () => {
    const { config } = setup();
    const unknown = await cli('import', '--eval', data, '--config', config, '--map', 'delta=premium');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--map names "delta", not a model of .*; nothing was imported/);
    const none = await cli('import', '--eval', data, '--config', config);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no model of');
    const bad = await cli('import', '--eval', writeTemp('bad-eval.jsonl', '{"prompt": 1}\n'), '--config', config);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad-eval\.jsonl:1: "prompt" must be a string/);
  });

  it('explain shows what the contextual policy learned from it; purge --offline removes it', async () => {
    const { config } = setup();
    await cli('import', '--eval', data, '--config', config, '--map', 'alpha=premium', '--map', 'gamma=budget');
    const code = 'Write a Python version of this snippet, item 3:\n```\nx = 3\nprint(x + 1)\n```\n';
    const shown = await cli('explain', code, '--config', config);
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toMatch(/^query class: code/);
    // alpha (premium) is right on every snippet, gamma (budget) on half.
    expect(shown.stdout).toMatch(/\npremium \*\s+0\.9\d\d/);
    expect(shown.stdout).toMatch(/\nbudget\s+0\.[45]\d\d/);
    expect(shown.stdout).toContain('class:code');
    const json = JSON.parse((await cli('explain', code, '--config', config, '--json')).stdout);
    expect(json.choice).toBe('premium');
    expect(json.predictions.map((p: { model: string }) => p.model).sort()).toEqual(['budget', 'premium']);
    // Per-class policies explain per class.
    const adaptive = await cli('explain', code, '--config', config, '--policy', 'adaptive');
    expect(adaptive.stdout).toMatch(/policy adaptive routes per class/);
    expect(adaptive.stdout).toMatch(/premium \*/);

    const purged = await cli('purge', '--offline', '--config', config);
    expect(purged.stdout).toMatch(/^deleted 160 offline traces/);
    const cold = await cli('explain', code, '--config', config);
    expect(cold.stdout).toMatch(/\npremium\s+0\.500|\nbudget\s+\*?\s*0\.500/);
    const neither = await cli('purge', '--config', config);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toContain('give either --before TIME or --offline');
  });
});
