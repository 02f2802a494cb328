/**
 * Query classification: a faithful port of the original's `classify_query` and of the heuristic
 * router's detectors. The patterns are Python `re` patterns with IGNORECASE on `str`; JavaScript's
 * `\b`, `\w` and `\s` differ from Python's on non-ASCII text, so they are spelled out:
 * WORD is Python's Unicode `\w`, SPACE is Python's `\s` (it has U+001C–U+001F and U+0085, not U+FEFF).
 * The `u` flag also gives Python's case folding of ſ (U+017F) and K (U+212A).
 */

export type BuiltinQueryClass = 'code' | 'math' | 'short' | 'long' | 'general';

export const QUERY_CLASSES: readonly BuiltinQueryClass[] = ['code', 'math', 'short', 'long', 'general'];

const WORD = '[\\p{L}\\p{N}_]';
const SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
/** Python's `\b` before a word character: the previous character is not a word character. */
const START = `(?<!${WORD})`;
/** Python's `\b` after a word character. */
const END = `(?!${WORD})`;

function pattern(source: string): RegExp {
  return new RegExp(source, 'iu');
}

function words(list: readonly string[]): string {
  return `${START}(?:${list.join('|')})${END}`;
}

// classify_query: ```|`[^`]+`|\bdef\s|\bclass\s|\bimport\s|\bfunction\s
const CLASSIFY_CODE = pattern(`\`\`\`|\`[^\`]+\`|${START}(?:def|class|import|function)${SPACE}`);
// classify_query: \bsolve\b|\bintegral\b|\bequation\b|\bcalculate\b|\bcompute\b
const CLASSIFY_MATH = pattern(words(['solve', 'integral', 'equation', 'calculate', 'compute']));

// The heuristic router's broader detectors.
const HEURISTIC_CODE = pattern(
  [
    CLASSIFY_CODE.source,
    `${START}(?:const|var|let)${SPACE}`,
    `${START}if${SPACE}*\\(`,
    '->',
    '=>',
    `\\{${SPACE}*\\}`,
    `${START}for${SPACE}+${WORD}+${SPACE}+in${SPACE}`,
    '#include',
    'System\\.out',
  ].join('|'),
);
const HEURISTIC_MATH = pattern(
  words([
    'solve',
    'integral',
    'equation',
    'proof',
    'derivative',
    'matrix',
    'theorem',
    'calculate',
    'compute',
    'sigma',
    'sum',
    'limit',
    'probability',
  ]),
);
const REASONING = pattern(words(['explain', 'analyze', 'compare', 'why', 'step[- ]by[- ]step', 'reason', 'think']));

const HIGH_SURROGATE = /[\uD800-\uDBFF]/;
const SHORT_BELOW = 50;
const LONG_ABOVE = 500;

/** Length in code points, as Python's `len(str)` counts. */
export function codePointLength(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return text.length - pairs;
}

/** The original's `classify_query`: code, then math, then under 50 characters short, over 500 long. */
export function classifyQuery(query: string): BuiltinQueryClass {
  if (CLASSIFY_CODE.test(query)) return 'code';
  if (CLASSIFY_MATH.test(query)) return 'math';
  // A UTF-16 length bounds the code-point length from both sides (n/2 ≤ points ≤ n); count only when needed.
  const units = query.length;
  if (units < SHORT_BELOW) return 'short';
  if (units > LONG_ABOVE * 2) return 'long';
  // 100..500 units: at least 50 and at most 500 code points, so neither short nor long.
  if (units >= SHORT_BELOW * 2 && units <= LONG_ABOVE) return 'general';
  const points = HIGH_SURROGATE.test(query) ? codePointLength(query) : units;
  if (points < SHORT_BELOW) return 'short';
  if (points > LONG_ABOVE) return 'long';
  return 'general';
}

/** The heuristic router's code detector (broader than classifyQuery's). */
export function hasCode(query: string): boolean {
  return HEURISTIC_CODE.test(query);
}

/** The heuristic router's math detector (broader than classifyQuery's). */
export function hasMath(query: string): boolean {
  return HEURISTIC_MATH.test(query);
}

/** The heuristic router's reasoning keywords. */
export function hasReasoning(query: string): boolean {
  return REASONING.test(query);
}
