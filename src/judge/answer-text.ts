/**
 * The text of an answer, for the judge: a whole completion's `choices[0].message.content`, or the
 * `content` deltas of a stream's events as they are relayed. Bounded: the judge reads at most
 * `MAX_ANSWER_CHARS` of an answer.
 */

export const MAX_ANSWER_CHARS = 16 * 1024;
/** Most bytes of one unfinished event kept; a longer event is skipped. */
const MAX_EVENT_BYTES = 256 * 1024;

/** The text of a message's content: a string, or its text parts joined. */
function contentOf(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  let out = '';
  for (const part of content) {
    if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') out += (part as { text: string }).text;
  }
  return out;
}

function firstChoice(parsed: unknown): Record<string, unknown> | null {
  if (typeof parsed !== 'object' || parsed === null) return null;
  const choices = (parsed as { choices?: unknown }).choices;
  if (!Array.isArray(choices) || choices.length === 0) return null;
  const choice: unknown = choices[0];
  return typeof choice === 'object' && choice !== null ? (choice as Record<string, unknown>) : null;
}

/** `choices[0].message.content` of a whole completion (null when it has none, or is not JSON). */
export function wholeAnswerText(payload: Buffer | string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return null;
  }
  const message = firstChoice(parsed)?.message;
  if (typeof message !== 'object' || message === null) return null;
  const text = contentOf((message as { content?: unknown }).content);
  return text === null ? null : text.slice(0, MAX_ANSWER_CHARS);
}

/** The `data:` lines of one server-sent event, joined as the SSE spec joins them. */
function eventData(event: string): string {
  let data: string | null = null;
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data ?? '';
}

/**
 * Gathers the assistant's `content` deltas of an SSE chat stream from the chunks as they are relayed
 * (the chunks themselves are not touched). Stops reading once it has `MAX_ANSWER_CHARS`.
 */
export class StreamText {
  private readonly decoder = new TextDecoder();
  private pending = '';
  private gathered = '';
  private full = false;

  /** As a `relayStream` tap. */
  readonly feed = (chunk: Buffer): void => {
    if (this.full) return;
    this.pending += this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = /\r\n\r\n|\n\n|\r\r/.exec(this.pending);
      if (end === null) break;
      this.read(this.pending.slice(0, end.index));
      this.pending = this.pending.slice(end.index + end[0].length);
      if (this.full) return;
    }
    if (this.pending.length > MAX_EVENT_BYTES) this.pending = '';
  };

  /** What was gathered; an event left unfinished at the end is read too. */
  text(): string {
    if (!this.full && this.pending.trim() !== '') {
      this.read(this.pending);
      this.pending = '';
    }
    return this.gathered;
  }

  private read(event: string): void {
    const data = eventData(event);
    if (data === '' || data === '[DONE]') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    const delta = firstChoice(parsed)?.delta;
    if (typeof delta !== 'object' || delta === null) return;
    const text = contentOf((delta as { content?: unknown }).content);
    if (!text) return;
    this.gathered += text;
    if (this.gathered.length >= MAX_ANSWER_CHARS) {
      this.gathered = this.gathered.slice(0, MAX_ANSWER_CHARS);
      this.full = true;
      this.pending = '';
    }
  }
}
