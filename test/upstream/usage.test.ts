import { describe, expect, it } from 'vitest';
import { StreamUsageReader, usageFromBody } from '../../src/upstream/usage.js';

const buf = (s: string) => Buffer.from(s);

describe('usageFromBody: usage read from the tail of a completion, without parsing the answer', () => {
  it('finds the top-level usage at the end, nested details and all', () => {
    const body = JSON.stringify({
      id: 'x',
      choices: [{ message: { content: 'he wrote "usage": {"prompt_tokens": 5} in a string' } }],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
    });
    expect(usageFromBody(buf(body))).toEqual({ promptTokens: 3, completionTokens: 4 });
  });

  it('takes whitespace, and gives null for no usage, a null usage or junk', () => {
    expect(usageFromBody(buf('{ "usage" :\n { "prompt_tokens" : 10, "completion_tokens": 2 } }\n'))).toEqual({
      promptTokens: 10,
      completionTokens: 2,
    });
    expect(usageFromBody(buf('{"a":1}'))).toBeNull();
    expect(usageFromBody(buf('{"usage":null}'))).toBeNull();
    expect(usageFromBody(buf('{"type":"usage"}'))).toBeNull();
    expect(usageFromBody(buf('{"usage":{"prompt_tokens":'))).toBeNull();
  });

  it('matches a full parse on answers of every shape the tests use', () => {
    for (const usage of [undefined, null, { prompt_tokens: 1 }, { completion_tokens: 9, prompt_tokens: -1 }]) {
      const body = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [], ...(usage === undefined ? {} : { usage }) });
      const parsed = JSON.parse(body) as { usage?: { prompt_tokens?: number; completion_tokens?: number } | null };
      const expected = parsed.usage
        ? {
            promptTokens: typeof parsed.usage.prompt_tokens === 'number' && parsed.usage.prompt_tokens >= 0 ? parsed.usage.prompt_tokens : null,
            completionTokens: typeof parsed.usage.completion_tokens === 'number' ? parsed.usage.completion_tokens : null,
          }
        : null;
      expect(usageFromBody(buf(body))).toEqual(expected);
    }
  });
});

describe('StreamUsageReader: usage from server-sent events, however the bytes are cut', () => {
  const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
  const stream =
    ev({ choices: [{ delta: { content: 'hi' } }], usage: null }) +
    ev({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 2 } }) +
    ev({ choices: [], usage: null }) +
    'data: [DONE]\n\n';

  function read(text: string, size: number): unknown {
    const reader = new StreamUsageReader();
    const bytes = buf(text);
    for (let i = 0; i < bytes.length; i += size) reader.feed(bytes.subarray(i, i + size));
    return reader.usage;
  }

  it('finds the usage chunk for any chunk size, and a later "usage": null does not erase it', () => {
    for (const size of [1, 2, 3, 7, 16, 50, 4096]) {
      expect(read(stream, size)).toEqual({ promptTokens: 11, completionTokens: 2 });
    }
  });

  it('reads CRLF streams and data split over several lines', () => {
    expect(read(stream.replace(/\n/g, '\r\n'), 5)).toEqual({ promptTokens: 11, completionTokens: 2 });
    const multiline = 'data: {"choices":[],\ndata: "usage":{"prompt_tokens":1,"completion_tokens":9}}\n\n';
    expect(read(multiline, 4)).toEqual({ promptTokens: 1, completionTokens: 9 });
  });

  it('the last usage wins; none gives null', () => {
    const two = ev({ usage: { prompt_tokens: 1, completion_tokens: 1 } }) + ev({ usage: { prompt_tokens: 2, completion_tokens: 3 } });
    expect(read(two, 4096)).toEqual({ promptTokens: 2, completionTokens: 3 });
    expect(read(ev({ choices: [] }) + 'data: [DONE]\n\n', 3)).toBeNull();
  });

  it('skips an event longer than it keeps (256 KiB), however it is cut, and reads the usage after it', () => {
    const long = ev({ choices: [{ delta: { content: 'x'.repeat(300 * 1024) } }], usage: { prompt_tokens: 9, completion_tokens: 9 } });
    const last = ev({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 5 } });
    for (const size of [1000, 4096, 65536]) expect(read(long + last + 'data: [DONE]\n\n', size)).toEqual({ promptTokens: 4, completionTokens: 5 });
    expect(read(long, 4096)).toBeNull();
  });

  it('ignores an unfinished event at the end of the stream, as an SSE parser does', () => {
    expect(read('data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}', 8)).toBeNull();
  });
});

describe('usage of a Responses API answer: input and output tokens', () => {
  const response = (usage: unknown) => ({
    id: 'resp_1',
    object: 'response',
    output: [{ type: 'message', content: [{ type: 'output_text', text: 'the "usage": {"input_tokens": 99} in a string' }] }],
    tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { usage: { type: 'object' } } } }],
    usage,
    user: null,
    metadata: { usage: 'a string value' },
  });

  it('whole: from usage.input_tokens / output_tokens, past a nested "usage" before it and a metadata key after it', () => {
    const usage = { input_tokens: 36, input_tokens_details: { cached_tokens: 0 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 123 };
    expect(usageFromBody(buf(JSON.stringify(response(usage))))).toEqual({ promptTokens: 36, completionTokens: 87 });
    // No usage: no tokens counted (the tool's `usage` property is the last "usage" object then, with no counts).
    const none = usageFromBody(buf(JSON.stringify(response(null))));
    expect([none?.promptTokens ?? null, none?.completionTokens ?? null]).toEqual([null, null]);
    expect(usageFromBody(buf(JSON.stringify({ ...response(null), tools: [] })))).toBeNull();
    expect(usageFromBody(buf(JSON.stringify(response({ input_tokens: 'many', output_tokens: 2 }))))).toEqual({ promptTokens: null, completionTokens: 2 });
  });

  it("stream: from response.completed's response.usage (response.created's usage is null), however the bytes are cut", () => {
    const ev = (type: string, o: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;
    const text =
      ev('response.created', { response: { ...response(null), status: 'in_progress' } }) +
      ev('response.output_text.delta', { delta: '"usage": {"input_tokens": 5}' }) +
      ev('response.completed', { response: response({ input_tokens: 21, output_tokens: 4, total_tokens: 25 }) });
    for (const size of [1, 5, 64, 4096]) {
      const reader = new StreamUsageReader();
      const bytes = buf(text);
      for (let i = 0; i < bytes.length; i += size) reader.feed(bytes.subarray(i, i + size));
      expect(reader.usage, `chunks of ${size}`).toEqual({ promptTokens: 21, completionTokens: 4 });
    }
  });
});
