import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small synthetic data set: 3 models, two kinds of prompts that classify differently, a different
 * model best on each. Prompt i of a kind has j = floor(i / 2); scores follow j:
 *
 *   code prompts (``` fences, class "code"):  alpha 1 always; beta 1 when j%4==0; gamma 1 when j%2==0
 *   long plain prompts (class "long"):        alpha 1 when j%2==0; beta 1 unless j%10==0; gamma 1 when j%5==0
 *
 * Costs are constant per model: alpha $0.004, beta $0.002, gamma $0.001.
 * Split: even i → "train", odd i → "test", so both splits hold the same scores.
 * With perKind a multiple of 40 the means are exact: code alpha 1, beta .25, gamma .5;
 * long alpha .5, beta .9, gamma .2.
 */
export const COST = { alpha: 0.004, beta: 0.002, gamma: 0.001 } as const;

export interface Row {
  prompt: string;
  scores: Record<string, number>;
  costs: Record<string, number>;
  split: string;
}

const FILLER =
  'Read the passage below and answer with the single best option, briefly and without explanation. ' +
  'The river runs past the old mill, where the miller keeps a small boat and a dog that barks at geese. ';

export function codePrompt(i: number): string {
  return `Write a Python version of this snippet, item ${i}:\n\`\`\`\nx = ${i}\nprint(x + 1)\n\`\`\`\n`;
}

export function longPrompt(i: number): string {
  return `Question ${i}. ${FILLER.repeat(4)}Which animal barks at geese?`;
}

export function syntheticRows(perKind = 200): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < perKind; i++) {
    const k = Math.floor(i / 2);
    const split = i % 2 === 0 ? 'train' : 'test';
    rows.push({
      prompt: codePrompt(i),
      scores: { alpha: 1, beta: k % 4 === 0 ? 1 : 0, gamma: k % 2 === 0 ? 1 : 0 },
      costs: { ...COST },
      split,
    });
    rows.push({
      prompt: longPrompt(i),
      scores: { alpha: k % 2 === 0 ? 1 : 0, beta: k % 10 === 0 ? 0 : 1, gamma: k % 5 === 0 ? 1 : 0 },
      costs: { ...COST },
      split,
    });
  }
  return rows;
}

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** Writes `text` to a new temporary file and returns its path. */
export function writeTemp(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tracegate-eval-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
