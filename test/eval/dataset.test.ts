import { describe, expect, it } from 'vitest';
import { loadDataset, parseDataset, splitOf } from '../../src/eval/dataset.js';
import { codePrompt, longPrompt, syntheticRows, toJsonl, writeTemp } from './synthetic.js';
import { DatasetError } from '../../src/core/errors.js';

const good = (prompt = 'hello there') =>
  JSON.stringify({ prompt, scores: { a: 1, b: 0.5 }, costs: { a: 0.01, b: 0.002 } });

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('eval data set', () => {
  it('reads scores and costs in the first line\'s model order, classifying each prompt once', () => {
    const data = parseDataset(toJsonl(syntheticRows(40)), 'syn.jsonl');
    expect(data.models).toEqual(['alpha', 'beta', 'gamma']);
    expect(data.queries).toHaveLength(80);
    const [code, long] = data.queries;
    expect(code?.queryClass).toBe('code');
    expect(long?.queryClass).toBe('long');
    expect(code?.prompt).toBe(codePrompt(0));
    expect(long?.prompt).toBe(longPrompt(0));
    expect([...(code?.scores ?? [])]).toEqual([1, 1, 1]);
    expect([...(code?.costs ?? [])]).toEqual([0.004, 0.002, 0.001]);
    expect(code?.split).toBe('train');
    expect(data.queries[2]?.split).toBe('test');
    expect(splitOf(data, 'test')).toHaveLength(40);
  });

  it('skips blank lines, ignores extra keys and counts lines from 1', () => {
    const text = `\n${JSON.stringify({ id: 'x', task: 't', prompt: 'p', scores: { a: 0 }, costs: { a: 0 } })}\n\n`;
    const data = parseDataset(text);
    expect(data.queries).toHaveLength(1);
    expect(data.queries[0]?.line).toBe(2);
    expect(data.queries[0]?.split).toBeUndefined();
  });

  it('names the line of a bad JSON line', () => {
    const err = errorOf(() => parseDataset([good(), good(), '{"prompt": "x", scores}'].join('\n'), 'bad.jsonl'));
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toMatch(/^bad\.jsonl:3: invalid JSON/);
  });

  it('names the line and model of a score out of [0, 1]', () => {
    const bad = JSON.stringify({ prompt: 'x', scores: { a: 1, b: 1.5 }, costs: { a: 0, b: 0 } });
    const err = errorOf(() => parseDataset([good(), bad].join('\n'), 'd.jsonl'));
    expect(err.message).toBe('d.jsonl:2: score of "b" must be a number in [0, 1], got 1.5');
  });

  it('names the line whose models differ from the first line\'s', () => {
    const other = JSON.stringify({ prompt: 'x', scores: { a: 1, c: 1 }, costs: { a: 0, c: 0 } });
    const err = errorOf(() => parseDataset([good(), good(), good(), other].join('\n'), 'd.jsonl'));
    expect(err.message).toBe('d.jsonl:4: "scores" models differ from the first line\'s (missing "b"; unexpected "c")');
    const costs = JSON.stringify({ prompt: 'x', scores: { a: 1, b: 1 }, costs: { a: 0 } });
    expect(errorOf(() => parseDataset([good(), costs].join('\n'), 'd.jsonl')).message).toMatch(/^d\.jsonl:2: "costs" models differ/);
  });

  it('rejects missing fields, negative costs and an empty file', () => {
    expect(errorOf(() => parseDataset('{"scores": {"a": 1}, "costs": {"a": 0}}', 'd')).message).toBe('d:1: "prompt" must be a string');
    expect(errorOf(() => parseDataset('{"prompt": "x", "scores": {"a": 1}, "costs": {"a": -1}}', 'd')).message).toMatch(
      /^d:1: cost of "a" must be a non-negative number/,
    );
    expect(errorOf(() => parseDataset('\n\n', 'd')).message).toMatch(/no queries/);
  });

  it('names a missing file and an absent split', () => {
    expect(errorOf(() => loadDataset('/nonexistent/data.jsonl')).message).toMatch(/^cannot read data file \/nonexistent\/data\.jsonl/);
    const data = loadDataset(writeTemp('d.jsonl', toJsonl(syntheticRows(40))));
    expect(errorOf(() => splitOf(data, 'dev')).message).toMatch(/no query has split "dev" \(splits present: train, test\)/);
  });
});
