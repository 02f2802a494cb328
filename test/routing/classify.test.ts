import { describe, it, expect } from 'vitest';
import { classifyQuery, codePointLength, hasCode, hasMath, hasReasoning } from '../../src/routing/classify.js';

const pad = (text: string, length: number): string => text + 'x'.repeat(length - text.length);

describe('classifyQuery: code', () => {
  it('matches a triple backtick', () => {
    expect(classifyQuery('see ```')).toBe('code');
  });

  it('matches an inline code span but not an empty one or a lone backtick', () => {
    expect(classifyQuery('what does `x` do')).toBe('code');
    expect(classifyQuery('what does `` do')).toBe('short');
    expect(classifyQuery("it's a ` mark")).toBe('short');
  });

  it('matches def, class, import and function at a word start followed by whitespace', () => {
    expect(classifyQuery('def foo')).toBe('code');
    expect(classifyQuery('a class\tA')).toBe('code');
    expect(classifyQuery('import\nos')).toBe('code');
    expect(classifyQuery('function f')).toBe('code');
  });

  it('needs the whitespace after the keyword', () => {
    expect(classifyQuery('define it')).toBe('short');
    expect(classifyQuery('function(')).toBe('short');
    expect(classifyQuery('ends with def')).toBe('short');
  });

  it('needs a word boundary before the keyword, with Unicode letters and _ as word characters', () => {
    expect(classifyQuery('undef x')).toBe('short');
    expect(classifyQuery('my_def x')).toBe('short');
    expect(classifyQuery('édef x')).toBe('short');
    expect(classifyQuery('(def x')).toBe('code');
  });

  it('uses Python whitespace (U+001C counts, U+FEFF does not)', () => {
    expect(classifyQuery('def\u001cx')).toBe('code');
    expect(classifyQuery('def\ufeffx')).toBe('short');
  });

  it('ignores case', () => {
    expect(classifyQuery('DEF foo')).toBe('code');
    expect(classifyQuery('Import os')).toBe('code');
  });
});

describe('classifyQuery: math', () => {
  it('matches the five words as whole words, ignoring case', () => {
    for (const word of ['solve', 'integral', 'equation', 'calculate', 'compute']) {
      expect(classifyQuery(`please ${word} this`)).toBe('math');
      expect(classifyQuery(`please ${word.toUpperCase()} this`)).toBe('math');
    }
  });

  it('does not match longer words', () => {
    expect(classifyQuery('a computer')).toBe('short');
    expect(classifyQuery('the solver')).toBe('short');
    expect(classifyQuery('solve_it')).toBe('short');
  });

  it('folds ſ like Python (ſolve is solve)', () => {
    expect(classifyQuery('\u017folve it')).toBe('math');
  });
});

describe('classifyQuery: order and length thresholds', () => {
  it('checks code before math, and math before length', () => {
    expect(classifyQuery('solve `x`')).toBe('code');
    expect(classifyQuery(pad('calculate ', 800))).toBe('math');
    expect(classifyQuery('solve')).toBe('math');
  });

  it('is short under 50 characters and general at 50', () => {
    expect(classifyQuery(pad('', 49))).toBe('short');
    expect(classifyQuery(pad('', 50))).toBe('general');
    expect(classifyQuery('')).toBe('short');
  });

  it('is general at 500 characters and long at 501', () => {
    expect(classifyQuery(pad('', 500))).toBe('general');
    expect(classifyQuery(pad('', 501))).toBe('long');
  });

  it('counts code points as Python len() does, not UTF-16 units', () => {
    expect(classifyQuery('😀'.repeat(49))).toBe('short');
    expect(classifyQuery('😀'.repeat(50))).toBe('general');
    expect(classifyQuery('😀'.repeat(500))).toBe('general');
    expect(classifyQuery('😀'.repeat(501))).toBe('long');
    expect(codePointLength('a😀b')).toBe(3);
    expect(codePointLength('\ud800x')).toBe(2);
  });

  it('stays fast on 1.5k-character prompts', () => {
    const prompt = pad('Which option best completes the passage about the region? ', 1500);
    const prompts = Array.from({ length: 16 }, (_, i) => prompt + i);
    const n = 20_000;
    const start = performance.now();
    for (let i = 0; i < n; i++) classifyQuery(prompts[i & 15] as string);
    const perCallUs = ((performance.now() - start) * 1000) / n;
    // Measured about 2 µs; the bound only catches a pathological pattern.
    expect(perCallUs).toBeLessThan(50);
  });
});

describe('hasCode (heuristic detector)', () => {
  it('matches what classifyQuery calls code', () => {
    expect(hasCode('def f')).toBe(true);
    expect(hasCode('`x`')).toBe(true);
  });

  it('matches the broader patterns', () => {
    for (const text of [
      'const x = 1',
      'var y',
      'let z',
      'if (a)',
      'if(a)',
      'a -> b',
      'x => x',
      '{ }',
      '{}',
      'for item in list',
      '#include <stdio.h>',
      'system.OUT.println',
    ]) {
      expect(hasCode(text), text).toBe(true);
    }
  });

  it('does not match near misses', () => {
    for (const text of ['constant', 'lettuce', 'gif (x)', '{ a }', 'for in', 'System out', 'plain prose']) {
      expect(hasCode(text), text).toBe(false);
    }
  });
});

describe('hasMath (heuristic detector)', () => {
  it('matches the broader word list as whole words', () => {
    for (const word of ['proof', 'derivative', 'matrix', 'theorem', 'sigma', 'sum', 'limit', 'probability', 'solve']) {
      expect(hasMath(`the ${word}.`), word).toBe(true);
    }
    expect(hasMath('a summary')).toBe(false);
    expect(hasMath('limitless')).toBe(false);
  });
});

describe('hasReasoning', () => {
  it('matches the reasoning keywords, ignoring case', () => {
    for (const text of ['Explain this', 'analyze it', 'compare them', 'why?', 'step by step', 'step-by-step', 'reason', 'THINK']) {
      expect(hasReasoning(text), text).toBe(true);
    }
  });

  it('does not match inside longer words', () => {
    expect(hasReasoning('reasonable')).toBe(false);
    expect(hasReasoning('rethink')).toBe(false);
    expect(hasReasoning('stepbystep')).toBe(false);
  });
});
