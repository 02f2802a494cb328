import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findModelValue, findStreamOptionsValue, usageInsert, withModel, withModelAndInsert } from '../../src/pipeline/rewrite-model.js';

const at = (text: string) => {
  const body = Buffer.from(text);
  const span = findModelValue(body);
  return span && body.subarray(span.start, span.end).toString();
};
const rewrite = (text: string, model: string) => {
  const body = Buffer.from(text);
  const span = findModelValue(body);
  if (!span) throw new Error(`no model in ${text}`);
  return withModel(body, span, model).toString();
};

describe('findModelValue', () => {
  it('finds the top-level model first, in the middle and last, with any spacing', () => {
    expect(at('{"model":"auto","messages":[]}')).toBe('"auto"');
    expect(at('{"messages":[],"model":"auto","stream":true}')).toBe('"auto"');
    expect(at('{"messages":[],"model":"auto"}')).toBe('"auto"');
    expect(at(' \n{ "messages" : [ ] ,\r\n\t"model"\t:\n "auto" \n}\n ')).toBe('"auto"');
    expect(at(JSON.stringify({ messages: [{ role: 'user', content: 'x' }], model: 'a' }, null, 2))).toBe('"a"');
  });

  it('skips a "model" inside messages, tools or strings', () => {
    const text =
      '{"messages":[{"role":"user","content":"say \\"model\\":\\"x\\" \\\\","model":"inner"}],' +
      '"tools":[{"function":{"parameters":{"model":{"type":"string"}}}}],"note":"\\\\","model":"outer"}';
    expect(JSON.parse(text).model).toBe('outer');
    expect(at(text)).toBe('"outer"');
  });

  it('finds a model of another type, so that the client still gets the error it would have', () => {
    expect(at('{"model":null,"messages":[]}')).toBe('null');
    expect(at('{"model":12.5e3,"messages":[]}')).toBe('12.5e3');
    expect(at('{"model":{"a":[1,"}"]},"messages":[]}')).toBe('{"a":[1,"}"]}');
  });

  it('reads a key spelled with escapes as the parser does', () => {
    expect(at('{"mod\\u0065l":"a","messages":[]}')).toBe('"a"');
    expect(at('{"\\"model":"a","model":"b"}')).toBe('"b"');
    expect(at('{"model":"a","mod\\u0065l":"b"}')).toBeNull(); // twice, once escaped
  });

  it('gives up where only a parser can say which member counts', () => {
    expect(at('{"model":"a","messages":[],"model":"b"}')).toBeNull(); // twice
    expect(at('{"messages":[]}')).toBeNull();
    expect(at('{}')).toBeNull();
    expect(at('["model","a"]')).toBeNull();
    expect(at('{"model":"a"')).toBeNull(); // cut short
    expect(at('{"model":"a}')).toBeNull();
  });
});

describe('withModel', () => {
  it('keeps every other byte the client sent, which parsing and serializing again would change', () => {
    const text = '{"seed": 9007199254740993, "temperature": 1.0, "model" : "auto", "logit_bias": {"50256": -100, "1": 2}, "stop": ["\\u00e9"]}';
    expect(rewrite(text, 'gpt-4o')).toBe(text.replace('"auto"', '"gpt-4o"'));
    // What JSON.stringify would have sent instead:
    expect(JSON.stringify({ ...JSON.parse(text), model: 'gpt-4o' })).toContain('"seed":9007199254740992');
  });

  it('writes the new model as a JSON string, escapes and all', () => {
    const out = rewrite('{"model":"auto","messages":[]}', 'org/model "β"\\v2');
    expect(JSON.parse(out)).toEqual({ model: 'org/model "β"\\v2', messages: [] });
  });

  it('gives what JSON.parse reads as the request with only model changed, for any request (property)', () => {
    // Any code point, `model` itself among the keys of nested objects.
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constant('model')).filter((k) => k !== '__proto__');
    const json = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 0 }),
        fc.string({ unit: 'binary' }),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(key, tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    fc.assert(
      fc.property(
        fc.dictionary(key.filter((k) => k !== 'model'), json, { maxKeys: 6 }),
        fc.nat(),
        json,
        fc.string({ unit: 'binary', maxLength: 12 }),
        fc.constantFrom(undefined, 0, 1, 2, '\t'),
        (members, position, value, model, indent) => {
          const entries = Object.entries(members);
          entries.splice(position % (entries.length + 1), 0, ['model', value]);
          const text = JSON.stringify(Object.fromEntries(entries), null, indent);
          const body = Buffer.from(text);
          const span = findModelValue(body);
          expect(span).not.toBeNull();
          const out = withModel(body, span!, model);
          expect(JSON.parse(out.toString())).toEqual({ ...JSON.parse(text), model });
          // Nothing outside the value moved.
          expect(out.subarray(0, span!.start).equals(body.subarray(0, span!.start))).toBe(true);
          expect(out.subarray(out.length - (body.length - span!.end)).equals(body.subarray(span!.end))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('usageInsert', () => {
  const insert = (text: string) => {
    const body = Buffer.from(text);
    const model = findModelValue(body)!;
    const options = text.includes('stream_options') ? findStreamOptionsValue(body) : null;
    const where = text.includes('stream_options') && options === null ? null : usageInsert(body, options);
    return where && withModelAndInsert(body, model, 'up', where).toString();
  };

  it('adds stream_options first, or include_usage first in the client\'s stream_options, keeping the other bytes', () => {
    expect(insert('{"model":"auto","stream":true,"seed":9007199254740993}')).toBe('{"stream_options":{"include_usage":true},"model":"up","stream":true,"seed":9007199254740993}');
    expect(insert(' { "stream":true, "model" : "auto" }')).toBe(' {"stream_options":{"include_usage":true}, "stream":true, "model" : "up" }');
    expect(insert('{"model":"auto","stream_options":{"x":1.0},"stream":true}')).toBe('{"model":"up","stream_options":{"include_usage":true,"x":1.0},"stream":true}');
    expect(insert('{"stream_options":{ },"model":"auto"}')).toBe('{"stream_options":{"include_usage":true },"model":"up"}');
    expect(JSON.parse(insert('{"stream_options":{},"model":"auto"}')!)).toEqual({ stream_options: { include_usage: true }, model: 'up' });
  });

  it('says it cannot when stream_options is not an object', () => {
    expect(insert('{"model":"auto","stream_options":null}')).toBeNull();
  });
});
