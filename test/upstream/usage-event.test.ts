import { describe, expect, it } from 'vitest';
import { UsageEventDropper } from '../../src/upstream/usage-event.js';

const event = (data: unknown, eol = '\n') => `data: ${JSON.stringify(data)}${eol}${eol}`;
const delta = (content: string, usage?: null) => event({ id: 'c', choices: [{ index: 0, delta: { content } }], ...(usage === null ? { usage: null } : {}) });
const usageEvent = (eol = '\n') => event({ id: 'c', choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }, eol);
const DONE = 'data: [DONE]\n\n';

/** What the dropper lets through when `text` arrives cut at `cuts`. */
function through(text: string, cuts: number[]): string {
  const bytes = Buffer.from(text);
  const dropper = new UsageEventDropper();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(dropper.feed(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(dropper.finish());
  return Buffer.concat(out).toString();
}

describe('UsageEventDropper', () => {
  it('drops exactly the usage event, wherever the reads are cut', () => {
    const before = delta('Hel') + delta('lo') + event({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    const text = before + usageEvent() + DONE;
    for (let a = 0; a <= text.length; a++) expect(through(text, [a])).toBe(before + DONE);
    for (let a = 0; a < text.length; a += 7) for (let b = a; b <= text.length; b += 5) expect(through(text, [a, b])).toBe(before + DONE);
  });

  it('passes a read of whole events without a usage object as it is (the same buffer)', () => {
    const chunk = Buffer.from(delta('a') + delta('b', null));
    expect(new UsageEventDropper().feed(chunk)).toBe(chunk);
  });

  it('keeps events whose usage is null, a usage in a choice-carrying chunk, and usage-like text', () => {
    const kept = delta('a', null) + event({ choices: [{ index: 0, delta: {} }], usage: { prompt_tokens: 1 } }) + delta('"usage":{"x":1}');
    expect(through(kept + usageEvent() + DONE, [])).toBe(kept + DONE);
  });

  it('reads CRLF events', () => {
    const text = delta('a').replace(/\n/g, '\r\n') + usageEvent('\r\n') + 'data: [DONE]\r\n\r\n';
    for (let a = 0; a <= text.length; a++) expect(through(text, [a])).toBe(delta('a').replace(/\n/g, '\r\n') + 'data: [DONE]\r\n\r\n');
  });

  it('relays a stream that ends inside an event, at the end', () => {
    expect(through(delta('a') + 'data: {"choi', [3])).toBe(delta('a') + 'data: {"choi');
  });

  it('relays an unfinished event longer than it holds as it comes', () => {
    const long = `data: {"choices":[{"delta":{"content":"${'x'.repeat(70 * 1024)}"}}]}\n\n`;
    const dropper = new UsageEventDropper();
    const first = dropper.feed(Buffer.from(long.slice(0, 66 * 1024)));
    expect(first.length).toBe(66 * 1024);
    expect(dropper.feed(Buffer.from(long.slice(66 * 1024) + usageEvent())).toString()).toBe(long.slice(66 * 1024));
  });
});
