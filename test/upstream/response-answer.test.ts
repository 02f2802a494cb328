import { describe, expect, it } from 'vitest';
import { ResponseStreamReader, topLevelId } from '../../src/upstream/response-answer.js';

const buf = (s: string) => Buffer.from(s);

describe('topLevelId: the id of a whole Responses API answer, read from its bytes', () => {
  it('finds the top-level id wherever it is, never a nested one or a string that looks like a key', () => {
    expect(topLevelId(buf('{"id":"resp_abc","object":"response"}'))).toBe('resp_abc');
    expect(topLevelId(buf('{ "object" : "response", "output": [{"id": "msg_1"}], "meta": {"id": "x"}, "note": "\\"id\\": \\"no\\"",\n "id" : "resp_late" }'))).toBe(
      'resp_late',
    );
    expect(topLevelId(buf('{"output":[{"id":"msg_1"}],"text":"id"}'))).toBeNull();
    expect(topLevelId(buf('{"ids":"x","xid":"y","id":"resp_z"}'))).toBe('resp_z');
  });

  it('null for an id that is not a plain string, too long, or a body cut short', () => {
    expect(topLevelId(buf('{"id":42}'))).toBeNull();
    expect(topLevelId(buf('{"id":"resp_\\u0041"}'))).toBeNull();
    expect(topLevelId(buf(`{"id":"${'r'.repeat(257)}"}`))).toBeNull();
    expect(topLevelId(buf(`{"id":"${'r'.repeat(256)}"}`))).toBe('r'.repeat(256));
    expect(topLevelId(buf('{"id":"resp_'))).toBeNull();
    expect(topLevelId(buf('[{"id":"resp_1"}]'))).toBeNull();
  });

  it('agrees with a full parse on answers with ids in odd places', () => {
    for (const answer of [{ id: 'resp_1' }, { object: 'response', id: 'resp_2' }, { a: { id: 'n' }, b: ['id', { id: 'm' }], id: 'resp_3' }, { a: 1 }]) {
      expect(topLevelId(buf(JSON.stringify(answer)))).toBe((answer as { id?: string }).id ?? null);
    }
  });
});

describe('ResponseStreamReader: the response id and a failure from the events, however the bytes are cut', () => {
  const ev = (type: string, o: Record<string, unknown>, crlf = false) => {
    const text = `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;
    return crlf ? text.replace(/\n/g, '\r\n') : text;
  };
  function read(text: string, size: number): ResponseStreamReader {
    const reader = new ResponseStreamReader();
    const bytes = buf(text);
    for (let i = 0; i < bytes.length; i += size) reader.feed(bytes.subarray(i, i + size));
    return reader;
  }

  it('takes the id from response.created; a completed stream has no failure', () => {
    const text =
      ev('response.created', { response: { id: 'resp_first', status: 'in_progress', usage: null } }) +
      ev('response.output_text.delta', { delta: 'a "response.failed" in the text' }) +
      ev('response.completed', { response: { id: 'resp_first', status: 'completed' } }, true);
    for (const size of [1, 3, 17, 4096]) {
      const reader = read(text, size);
      expect(reader.responseId, `chunks of ${size}`).toBe('resp_first');
      expect(reader.failure).toBeNull();
    }
  });

  it('a stream without response.created takes the id from response.completed', () => {
    expect(read(ev('response.completed', { response: { id: 'resp_c' } }), 7).responseId).toBe('resp_c');
  });

  it('response.failed and error events are failures, with their messages', () => {
    const failed = ev('response.created', { response: { id: 'resp_f' } }) + ev('response.failed', { response: { id: 'resp_f', error: { code: 'server_error', message: 'boom' } } });
    for (const size of [2, 4096]) expect(read(failed, size)).toMatchObject({ responseId: 'resp_f', failure: 'response failed: boom' });
    expect(read(ev('error', { code: 'x', message: 'rate limited', param: null }), 5)).toMatchObject({ responseId: null, failure: 'error event: rate limited' });
  });

  it('an event longer than it reads is skipped, and the events after it are still read', () => {
    const text = ev('response.output_text.delta', { delta: 'x'.repeat(1_100_000) }) + ev('response.completed', { response: { id: 'resp_after' } });
    expect(read(text, 65536).responseId).toBe('resp_after');
  });
});
