import { describe, expect, it } from 'vitest';
import { MAX_ANSWER_CHARS, StreamText, wholeAnswerText } from '../../src/judge/answer-text.js';
import { DailySpend, MinuteWindow } from '../../src/judge/limits.js';
import { judgeRequestBody, MAX_REASON_CHARS, parseVerdict } from '../../src/judge/verdict.js';

describe('parseVerdict', () => {
  it('reads the JSON object, the first object in prose, then a "score": pattern', () => {
    expect(parseVerdict('{"score": 0.8, "reason": "fine"}')).toEqual({ score: 0.8, reason: 'fine' });
    expect(parseVerdict('Here you go:\n```json\n{"score": 1, "reason": "exact"}\n```')).toEqual({ score: 1, reason: 'exact' });
    expect(parseVerdict('{"score": "0.3"}')).toEqual({ score: 0.3, reason: null });
    expect(parseVerdict('I give it "score": 0.25 and "reason": "a \\"quoted\\" word"')).toEqual({ score: 0.25, reason: 'a "quoted" word' });
  });

  it('gives null without a score from 0 to 1', () => {
    for (const text of ['', 'no idea', '{"score": 7}', '{"score": -0.1}', '{"grade": 0.5}', '"score": 1.5', '{"score": null}']) {
      expect(parseVerdict(text)).toBeNull();
    }
  });

  it('keeps at most MAX_REASON_CHARS of the reason', () => {
    const verdict = parseVerdict(JSON.stringify({ score: 0.5, reason: 'x'.repeat(2000) }));
    expect(verdict!.reason).toHaveLength(MAX_REASON_CHARS);
  });
});

describe('judgeRequestBody', () => {
  it('holds the system prompt, the query and the answer, and asks for JSON unless told not to', () => {
    const exchange = { system: 'be brief', query: 'what is 2+2?', answer: '4' };
    const body = JSON.parse(judgeRequestBody('judge-model', exchange, 'Grade strictly.', true));
    expect(body).toMatchObject({ model: 'judge-model', stream: false, response_format: { type: 'json_object' } });
    expect(body.messages[0].content).toMatch(/^Grade strictly\.\n\nReply with only a JSON object/);
    for (const part of ['be brief', 'what is 2+2?', '4']) expect(body.messages[1].content).toContain(part);
    expect(JSON.parse(judgeRequestBody('judge-model', exchange, undefined, false))).not.toHaveProperty('response_format');
  });
});

describe('answer text', () => {
  it("reads a whole completion's first message", () => {
    expect(wholeAnswerText(Buffer.from(JSON.stringify({ choices: [{ message: { content: 'hi' } }] })))).toBe('hi');
    expect(wholeAnswerText(Buffer.from(JSON.stringify({ choices: [{ message: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] } }] })))).toBe('ab');
    expect(wholeAnswerText(Buffer.from('{"choices": []}'))).toBeNull();
    expect(wholeAnswerText(Buffer.from('not json'))).toBeNull();
  });

  it("gathers a stream's content deltas across chunk boundaries, bounded", () => {
    const events = ['Hel', 'lo ', 'wörld'].map((c) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: c } }] })}\n\n`);
    const bytes = Buffer.from([`data: ${JSON.stringify({ choices: [{ delta: { role: 'assistant' } }] })}\n\n`, ...events, 'data: {"choices":[],"usage":{"prompt_tokens":1}}\n\n', 'data: [DONE]\n\n'].join(''));
    const text = new StreamText();
    // One byte at a time: events and a multi-byte character split across chunks.
    for (let i = 0; i < bytes.length; i++) text.feed(bytes.subarray(i, i + 1));
    expect(text.text()).toBe('Hello wörld');

    const long = new StreamText();
    const big = `data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(10_000) } }] })}\r\n\r\n`;
    for (let i = 0; i < 3; i++) long.feed(Buffer.from(big));
    expect(long.text()).toHaveLength(MAX_ANSWER_CHARS);
  });
});

describe('limits', () => {
  it('a daily budget starts again at 0 on the next UTC day', () => {
    let now = Date.UTC(2025, 0, 31, 23, 59);
    const spend = new DailySpend(1, () => now);
    spend.add(0.6);
    expect(spend.exhausted()).toBe(false);
    spend.add(0.6);
    expect(spend.exhausted()).toBe(true);
    expect(spend.today()).toBeCloseTo(1.2);
    now = Date.UTC(2025, 1, 1, 0, 0, 1);
    expect(spend.exhausted()).toBe(false);
    expect(spend.today()).toBe(0);
  });

  it('a minute window lets `limit` events through in any 60 seconds', () => {
    let now = 1_000_000;
    const window = new MinuteWindow(2, () => now);
    expect(window.take()).toBe(true);
    now += 30_000;
    expect(window.take()).toBe(true);
    expect(window.open()).toBe(false);
    expect(window.take()).toBe(false);
    now += 30_000;
    expect(window.take()).toBe(true);
    expect(window.take()).toBe(false);
  });
});
