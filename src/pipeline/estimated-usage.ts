import { eventData, type Usage } from '../upstream/usage.js';
import type { ChatMessage } from './types.js';

/** Characters per token of the estimate (OpenAI's rule of thumb for English text). */
const CHARS_PER_TOKEN = 4;
/** Most characters of one unfinished event kept; a longer one is not counted. */
const MAX_EVENT_CHARS = 256 * 1024;

/** Characters of a message's or delta's text: string content, or the text parts of an array of parts. */
function contentChars(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) {
    const text = (part as { text?: unknown } | null)?.text;
    if (typeof text === 'string') n += text.length;
  }
  return n;
}

/** The characters of a request's messages' text, as its prompt tokens are estimated from them. */
export function promptChars(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += contentChars((m as { content?: unknown }).content);
  return n;
}

/**
 * Counts the characters a stream's answer is made of (every choice's `content` deltas and tool
 * calls' `arguments`), from the chunks as they are relayed (a `relayStream` tap: the chunks are not
 * touched). Each event is parsed: it runs only for a stream whose usage the upstream will not send
 * (a model with `streamUsage: false`), never on the default path.
 */
export class StreamChars {
  chars = 0;
  private readonly decoder = new TextDecoder();
  private pending = '';

  readonly feed = (chunk: Buffer): void => {
    this.pending += this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = /\r\n\r\n|\n\n|\r\r/.exec(this.pending);
      if (end === null) break;
      this.read(this.pending.slice(0, end.index));
      this.pending = this.pending.slice(end.index + end[0].length);
    }
    if (this.pending.length > MAX_EVENT_CHARS) this.pending = '';
  };

  private read(event: string): void {
    const data = eventData(event);
    if (data === '' || data === '[DONE]') return;
    let parsed: { choices?: unknown };
    try {
      parsed = JSON.parse(data) as { choices?: unknown };
    } catch {
      return;
    }
    if (!Array.isArray(parsed.choices)) return;
    for (const choice of parsed.choices) {
      const delta = (choice as { delta?: { content?: unknown; tool_calls?: unknown } } | null)?.delta;
      if (typeof delta !== 'object' || delta === null) continue;
      this.chars += contentChars(delta.content);
      if (!Array.isArray(delta.tool_calls)) continue;
      for (const call of delta.tool_calls) {
        const args = (call as { function?: { arguments?: unknown } } | null)?.function?.arguments;
        if (typeof args === 'string') this.chars += args.length;
      }
    }
  }
}

/** Tokens estimated from characters: the prompt's and the answer's, each divided by 4, rounded up. */
export function estimatedUsage(promptCharCount: number, answerChars: number): Usage {
  return { promptTokens: Math.ceil(promptCharCount / CHARS_PER_TOKEN), completionTokens: Math.ceil(answerChars / CHARS_PER_TOKEN) };
}
