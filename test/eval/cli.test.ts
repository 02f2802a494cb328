import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticRows, toJsonl, writeTemp } from './synthetic.js';

/** The built CLI (`npm test` builds first; after editing src/, run `npm run build`). */
const CLI = resolve(import.meta.dirname, '../../dist/cli.js');
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'eval', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let data: string;
beforeAll(() => {
  if (!existsSync(resolve(import.meta.dirname, '../../dist/eval/command.js'))) {
    throw new Error('dist/ has no eval command: run `npm run build` first');
  }
  data = writeTemp('synthetic.jsonl', toJsonl(syntheticRows(200)));
});

describe('tracegate eval (the built CLI)', () => {
  it('--json prints one object of the documented shape', async () => {
    const { code, stdout, stderr } = await cli(['--data', data, '--seeds', '2', '--json']);
    expect(stderr).toBe(''); // no progress bar when stderr is not a terminal
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ mode: 'online', n: 400, seeds: 2, lambdas: [0, 10, 50, 200, 1000] });
    expect(Object.keys(report.policies).sort()).toEqual(['adaptive', 'contextual', 'learned']);
    for (const policy of ['adaptive', 'contextual', 'learned']) {
      expect(Object.keys(report.policies[policy])).toEqual(['0', '10', '50', '200', '1000']);
      for (const point of Object.values(report.policies[policy]) as Record<string, unknown>[]) {
        expect(point).toEqual(
          expect.objectContaining({
            quality: expect.any(Number),
            cost: expect.any(Number),
            utility: expect.any(Number),
            share: expect.any(Object),
          }),
        );
      }
      expect(report.policy_auc[policy]).toEqual(expect.any(Number));
    }
    const b = report.baselines;
    expect(b.best_single).toEqual({ model: 'alpha', quality: expect.closeTo(0.75, 12), cost: expect.closeTo(1.6, 12) });
    expect(b.oracle).toEqual({ quality: expect.closeTo(1, 12), cost: expect.closeTo(0.86, 12) });
    expect(b.random).toEqual({ quality: expect.closeTo(1.675 / 3, 12), cost: expect.closeTo(2.8 / 3, 12) });
    expect(b.cheapest).toEqual({ model: 'gamma', quality: expect.closeTo(0.35, 12), cost: expect.closeTo(0.4, 12) });
    expect(Object.keys(b.models)).toEqual(['alpha', 'beta', 'gamma']);
    expect(b.best_single_by_lambda['200'].model).toBe('beta');
    expect(b.oracle_by_lambda['50'].utility).toBeCloseTo(1 - (50 * 0.86) / 400, 12);
    // Hull alpha/beta/gamma at costs 1.6/.8/.4 → x 1, 1/3, 0: (1/3)(.35 + .575)/2 + (2/3)(.575 + .75)/2.
    expect(report.zero_router_auc).toBeCloseTo(0.925 / 6 + 1.325 / 3, 12);
  });

  it('train-test mode with --cost-weight and a policy list', async () => {
    const { code, stdout } = await cli([
      '--data', data, '--seeds', '1', '--json', '--policy', 'learned', '--cost-weight', '50',
      '--split-train', 'train', '--split-test', 'test',
    ]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ mode: 'train-test', n: 200, seeds: 1, lambdas: [50], train_n: 200 });
    expect(Object.keys(report.policies)).toEqual(['learned']);
    expect(report.policies.learned['50'].quality).toBeCloseTo(0.95, 12);
    expect(report.baselines.models.alpha.cost).toBeCloseTo(0.8, 12);
  });

  it('warm start: the train split as offline evidence (a prior), then the test split online', async () => {
    const { code, stdout } = await cli(['--data', data, '--seeds', '1', '--json', '--warm-start', '--prior-weight', '20', '--lambdas', '0']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ mode: 'warm-start', n: 200, train_n: 200, options: { prior_weight: 20, split_train: 'train', split_test: 'test' } });
    for (const policy of ['adaptive', 'contextual', 'learned']) expect(report.policy_auc[policy]).toEqual(expect.any(Number));
    const text = await cli(['--data', data, '--seeds', '1', '--warm-start', '--lambdas', '0', '--policy', 'contextual']);
    expect(text.stdout).toMatch(/^tracegate eval: warm start: 200 "train" queries as offline evidence \(prior weight 1000\)/);
  });

  it('--config classifies the prompts with its router.classes rules', async () => {
    const config = writeTemp(
      'classes.json',
      JSON.stringify({
        models: { unused: { baseURL: 'http://127.0.0.1:9/v1', model: 'unused' } },
        router: { classes: [{ name: 'snippet', user: '```' }] },
      }),
    );
    const { code, stdout } = await cli(['--data', data, '--seeds', '1', '--lambdas', '0', '--policy', 'adaptive', '--config', config, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.notes.join('\n')).toMatch(/query classes from .*classes\.json's 1 router\.classes rule\(s\), then the built-in classifier: (snippet 200, long 200|long 200, snippet 200)/);
    const bad = writeTemp('bad-classes.json', JSON.stringify({ models: { u: { baseURL: 'http://127.0.0.1:9/v1', model: 'u' } }, router: { classes: [{ name: 'x', user: '(' }] } }));
    const refused = await cli(['--data', data, '--seeds', '1', '--config', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/rule "x": "user" is not a valid regular expression/);
  });

  it('prints tables by default', async () => {
    const { code, stdout } = await cli(['--data', data, '--seeds', '1', '--lambdas', '0,200']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^tracegate eval: online replay of 400 queries/);
    expect(stdout).toContain('λ = 0');
    expect(stdout).toContain('λ = 200');
    expect(stdout).toMatch(/best single: alpha\s+0\.750\s+1\.60\s+0\.7500/);
    expect(stdout).toMatch(/best single: beta\s+0\.575\s+0\.80\s+0\.1750/);
    expect(stdout).toMatch(/zero router \(single models\)\s+0\.596/);
    expect(stdout).toContain('note: heuristic');
  });

  it('names the line of bad input and exits non-zero', async () => {
    const lines = toJsonl(syntheticRows(40)).trimEnd().split('\n');
    lines[2] = '{"prompt": "x", "scores": ';
    const bad = writeTemp('bad.jsonl', lines.join('\n'));
    const json = await cli(['--data', bad]);
    expect(json.code).toBe(1);
    expect(json.stdout).toBe('');
    expect(json.stderr).toMatch(new RegExp(`^tracegate eval: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: invalid JSON`));

    lines[2] = JSON.stringify({ prompt: 'x', scores: { alpha: 1, beta: 2, gamma: 0 }, costs: { alpha: 0, beta: 0, gamma: 0 } });
    const range = await cli(['--data', writeTemp('range.jsonl', lines.join('\n'))]);
    expect(range.code).toBe(1);
    expect(range.stderr).toMatch(/range\.jsonl:3: score of "beta" must be a number in \[0, 1\], got 2\n$/);

    lines[2] = JSON.stringify({ prompt: 'x', scores: { alpha: 1, beta: 1 }, costs: { alpha: 0, beta: 0 } });
    const models = await cli(['--data', writeTemp('models.jsonl', lines.join('\n'))]);
    expect(models.code).toBe(1);
    expect(models.stderr).toMatch(/models\.jsonl:3: "scores" models differ from the first line's \(missing "gamma"\)/);

    const missing = await cli(['--data', '/nonexistent/eval.jsonl']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tracegate eval: cannot read data file \/nonexistent\/eval\.jsonl/);
  });

  it('rejects bad flags', async () => {
    const half = await cli(['--data', data, '--split-train', 'train']);
    expect(half.code).toBe(1);
    expect(half.stderr).toContain('--split-train and --split-test go together');
    const unknown = await cli(['--data', data, '--policy', 'adaptive,nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown policy "nope" \(known: .*adaptive/);
    const lambdas = await cli(['--data', data, '--lambdas', '0,-1']);
    expect(lambdas.code).toBe(1);
    expect(lambdas.stderr).toContain('non-negative numbers');
  });
});
