import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonObject } from '../../src/upstream/json-check.js';

const buf = (s: string) => Buffer.from(s);

/** The reference: what JSON.parse makes of the text. */
function parsesToObject(bytes: Buffer): boolean {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

describe('isJsonObject: the malformed-answer check', () => {
  it('passes one JSON object and fails what is cut short, empty, not JSON, or not an object', () => {
    for (const ok of [' {"a":1}\n', '{}', '{"a":[1,-2.5e+3,true,false,null,{"b":"\\u00e9\\n"}],"c":{}}', '\t{ "x" : [ ] }\r\n']) {
      expect(isJsonObject(buf(ok))).toBe(true);
    }
    for (const bad of [
      '{"id": "chatcmpl-broken", "choices": [',
      '',
      '   ',
      '<html><body>Bad gateway</body></html>',
      '[1,2]',
      '"text"',
      '{"a": 1,}',
      '{not json}',
      '{"a": 1}{"b": 2}',
      '{"a": 01}',
      '{"a": 1.}',
      '{"a": .5}',
      '{"a": tru}',
      '{"a": "raw\nnewline"}',
      '{"a": "\\x"}',
      '{"a": "\\u12"}',
      '{"a" 1}',
      '{1: 2}',
      '{"a": [1 2]}',
      '{"a": [1,]}',
      '{"a": {"b": 1]}',
      '\ufeff{}',
    ]) {
      expect(isJsonObject(buf(bad))).toBe(false);
    }
  });

  it('agrees with JSON.parse on generated JSON and on its damaged copies', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), fc.nat(), fc.integer({ min: 0, max: 5 }), fc.constantFrom(' ', ',', '}', ']', '"', '\\', ':', '0', '-', 'e', '\n', '\u0001'), (value, at, how, byte) => {
        const text = JSON.stringify(value) ?? 'null';
        const whole = buf(text);
        expect(isJsonObject(whole)).toBe(parsesToObject(whole));
        const i = text.length === 0 ? 0 : at % text.length;
        const damaged = how === 0 ? text.slice(0, i) : how === 1 ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + byte + text.slice(i + (how === 2 ? 0 : 1));
        expect(isJsonObject(buf(damaged))).toBe(parsesToObject(buf(damaged)));
      }),
      { numRuns: 3000 },
    );
  });

  it('checks deep nesting without recursion', () => {
    const deep = `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expect(isJsonObject(buf(deep))).toBe(true);
    expect(isJsonObject(buf(deep.slice(0, -2) + '}'))).toBe(false);
  });
});
