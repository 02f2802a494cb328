import { describe, expect, it } from 'vitest';
import { estimatedUsage, promptChars, StreamChars } from '../../src/pipeline/estimated-usage.js';

describe('estimated usage', () => {
  it("counts the prompt's text: string contents and text parts", () => {
    expect(promptChars([{ role: 'system', content: 'abcd' }, { role: 'user', content: [{ type: 'text', text: 'efg' }, { type: 'image_url', image_url: { url: 'x' } }] }])).toBe(7);
  });

  it("counts a stream's content deltas and tool call arguments, wherever the reads are cut", () => {
    const events =
      'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"héllo"}}]}\n\n' +
      ': comment\n\n' +
      'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}]}}]}\r\n\r\n' +
      'data: {"choices":[],"usage":null}\n\n' +
      'data: [DONE]\n\n';
    const bytes = Buffer.from(events);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const chars = new StreamChars();
      chars.feed(bytes.subarray(0, cut));
      chars.feed(bytes.subarray(cut));
      expect(chars.chars).toBe(5 + 7);
    }
  });

  it('divides by 4, rounding up', () => {
    expect(estimatedUsage(8, 22)).toEqual({ promptTokens: 2, completionTokens: 6 });
    expect(estimatedUsage(0, 0)).toEqual({ promptTokens: 0, completionTokens: 0 });
  });
});
