import { endsWithBlankLine } from './sse.js';

export interface Usage {
  promptTokens: number | null;
  completionTokens: number | null;
}

function tokenCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * Usage from a parsed answer or stream event; null when it carries none. A chat completion (or
 * chunk) and an embeddings list have `usage.prompt_tokens` / `completion_tokens`; a Responses API
 * answer has `usage.input_tokens` / `output_tokens`, and its stream's `response.completed` event
 * (like `response.failed` / `response.incomplete`) has them in `response.usage`.
 */
export function usageOf(parsed: unknown): Usage | null {
  if (typeof parsed !== 'object' || parsed === null) return null;
  let usage = (parsed as { usage?: unknown }).usage;
  if (usage === undefined) {
    const response = (parsed as { response?: unknown }).response;
    if (typeof response === 'object' && response !== null) usage = (response as { usage?: unknown }).usage;
  }
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown; input_tokens?: unknown; output_tokens?: unknown };
  const prompt = u.prompt_tokens !== undefined ? u.prompt_tokens : u.input_tokens;
  const completion = u.completion_tokens !== undefined ? u.completion_tokens : u.output_tokens;
  return { promptTokens: tokenCount(prompt), completionTokens: tokenCount(completion) };
}

/** Usage from the JSON text of a completion or chunk; null if absent or not JSON. */
export function readUsage(json: string): Usage | null {
  try {
    return usageOf(JSON.parse(json));
  } catch {
    return null;
  }
}

const USAGE_KEY = Buffer.from('"usage"');
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const LF = 0x0a;
const CR = 0x0d;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Index of the `}` closing the object that opens at `start` (strings skipped), or -1. */
function objectEnd(body: Buffer, start: number, end: number): number {
  let depth = 0;
  for (let i = start; i < end; i++) {
    const b = body[i];
    if (b === QUOTE) {
      for (i++; i < end && body[i] !== QUOTE; i++) if (body[i] === BACKSLASH) i++;
    } else if (b === OPEN_BRACE) {
      depth++;
    } else if (b === CLOSE_BRACE && --depth === 0) {
      return i;
    }
  }
  return -1;
}

/**
 * The bounds of the object value of the last `"usage"` key in `body[start, end)` that has one (a
 * `"usage": null` is passed over), or null. Inside a JSON string a quote is escaped, so `"usage"`
 * followed by `:` is always a key.
 */
export function lastUsageObject(body: Buffer, start: number, end: number): [number, number] | null {
  let at = body.lastIndexOf(USAGE_KEY, end - USAGE_KEY.length);
  while (at >= start) {
    let i = at + USAGE_KEY.length;
    while (i < end && isSpace(body[i])) i++;
    if (body[i] === COLON) {
      i++;
      while (i < end && isSpace(body[i])) i++;
      if (body[i] === OPEN_BRACE) {
        const close = objectEnd(body, i, end);
        if (close !== -1) return [i, close + 1];
      }
    }
    at = at > start ? body.lastIndexOf(USAGE_KEY, at - 1) : -1;
  }
  return null;
}

/**
 * Usage from a whole (non-streamed) answer without parsing it: the value of the last `"usage"` key,
 * which OpenAI-shaped answers put at the end (a Responses API answer too: its `usage` follows
 * `output`), is found from the tail and parsed on its own. Null when there is none.
 */
export function usageFromBody(body: Buffer): Usage | null {
  const found = lastUsageObject(body, 0, body.length);
  if (found === null) return null;
  try {
    return usageOf({ usage: JSON.parse(body.toString('utf8', found[0], found[1])) });
  } catch {
    return null;
  }
}

const LF_LF = Buffer.from('\n\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** Most bytes of one event kept while looking for usage; a longer event is skipped to its end, unread. */
const MAX_EVENT_BYTES = 256 * 1024;

/** Whether `"usage"` occurs in `data`: a plain loop for small chunks (a native search costs more to call). */
export function hasUsageKey(data: Buffer): boolean {
  const n = data.length;
  if (n > 1024) return data.indexOf(USAGE_KEY) !== -1;
  for (let i = 1; i + 5 < n; i++) {
    if (
      data[i] === 0x75 && // u
      data[i - 1] === QUOTE &&
      data[i + 1] === 0x73 && // s
      data[i + 2] === 0x61 && // a
      data[i + 3] === 0x67 && // g
      data[i + 4] === 0x65 && // e
      data[i + 5] === QUOTE
    ) {
      return true;
    }
  }
  return false;
}

/** End (exclusive) of the last complete event in `data`: just past its blank line, or -1. */
export function lastEventEnd(data: Buffer): number {
  const lf = data.lastIndexOf(LF_LF);
  const crlf = data.lastIndexOf(CRLF_CRLF);
  return Math.max(lf === -1 ? -1 : lf + 2, crlf === -1 ? -1 : crlf + 4);
}

/** End (exclusive) of the first complete event in `data`, or -1. */
export function firstEventEnd(data: Buffer): number {
  const lf = data.indexOf(LF_LF);
  const crlf = data.indexOf(CRLF_CRLF);
  if (lf === -1) return crlf === -1 ? -1 : crlf + 4;
  return crlf === -1 || lf + 2 < crlf + 4 ? lf + 2 : crlf + 4;
}

/**
 * End (exclusive, in `chunk`) of a blank line that starts in the previous chunk, whose last three
 * bytes are `tail` (the last in the low byte), and ends in `chunk`; -1 if none.
 */
export function splitEventEnd(tail: number, chunk: Buffer): number {
  const b0 = chunk[0];
  const b1 = chunk[1];
  const b2 = chunk[2];
  const last = tail & 0xff;
  const second = (tail >> 8) & 0xff;
  const third = (tail >> 16) & 0xff;
  // \r\n\r | \n, \r\n | \r\n, \r | \n\r\n, then \n | \n.
  if (third === CR && second === LF && last === CR && b0 === LF) return 1;
  if (second === CR && last === LF && b0 === CR && b1 === LF) return 2;
  if (last === CR && b0 === LF && b1 === CR && b2 === LF) return 3;
  if (last === LF && b0 === LF) return 1;
  return -1;
}

/** The last three bytes of what came so far (`tail` of the earlier chunks, then `chunk`), packed as splitEventEnd reads them. */
export function lastBytes(tail: number, chunk: Buffer): number {
  let packed = tail === -1 ? 0 : tail;
  const n = chunk.length;
  for (let i = Math.max(0, n - 3); i < n; i++) packed = ((packed << 8) | chunk[i]!) & 0xffffff;
  return packed;
}

/** The `data:` lines of one server-sent event, joined as the SSE spec joins them. */
export function eventData(text: string): string {
  const lines = text.split(/\r\n|\r|\n/);
  const data: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('data:')) continue;
    data.push(line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5));
  }
  return data.join('\n');
}

/**
 * Reads `usage` out of a server-sent-event stream as its bytes are relayed, without decoding or
 * parsing the events: complete events are searched for a `"usage"` key with an object value (a
 * native byte search), and only an event that has one is parsed. The last usage seen wins.
 *
 * Each byte is searched a bounded number of times: a chunk that ends an event is searched once, an
 * unfinished event is kept (up to `MAX_EVENT_BYTES`, copied once) and searched when it ends, and a
 * longer one is skipped to its end. So a stream without event terminators costs about what the same
 * bytes cost as events.
 */
export class StreamUsageReader {
  usage: Usage | null = null;
  /** The unfinished event's bytes, while it is short enough to read. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The unfinished event is longer than MAX_EVENT_BYTES: skipped to its end. */
  private skipping = false;
  /** The last three bytes of the previous chunk (the last in the low byte), when it ended inside an event; -1 otherwise. */
  private tail = -1;

  feed(chunk: Buffer): void {
    // The common case: the chunk is whole events (it ends with a blank line); one byte search.
    if (this.tail === -1 && endsWithBlankLine(chunk)) {
      if (hasUsageKey(chunk)) this.read(chunk, chunk.length);
      return;
    }
    const split = this.tail === -1 ? -1 : splitEventEnd(this.tail, chunk);
    const end = Math.max(lastEventEnd(chunk), split);
    this.tail = endsWithBlankLine(chunk) ? -1 : lastBytes(this.tail, chunk);
    if (end === -1) {
      // Still inside one event.
      this.keep(chunk);
      return;
    }
    let start = 0;
    if (this.skipping) {
      // The skipped event ends at the first event end (which may be the split one).
      const first = firstEventEnd(chunk);
      start = split === -1 ? first : first === -1 ? split : Math.min(split, first);
      this.skipping = false;
    }
    if (this.pendingBytes > 0) {
      const data = Buffer.concat([...this.pending, chunk.subarray(0, end)]);
      this.pending = [];
      this.pendingBytes = 0;
      if (hasUsageKey(data)) this.read(data, data.length);
    } else if (end > start) {
      const data = chunk.subarray(start, end);
      if (hasUsageKey(data)) this.read(data, data.length);
    }
    if (end < chunk.length) this.keep(chunk.subarray(end));
  }

  /** Keeps the bytes of an unfinished event, unless it has grown too long to read. */
  private keep(part: Buffer): void {
    if (this.skipping) return;
    if (this.pendingBytes + part.length > MAX_EVENT_BYTES) {
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = true;
      return;
    }
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
  }

  private read(data: Buffer, end: number): void {
    let limit = end;
    for (;;) {
      const found = lastUsageObject(data, 0, limit);
      if (found === null) return;
      // The event around it: from the blank line before it to the one after.
      const before = Math.max(data.lastIndexOf(LF_LF, found[0]), data.lastIndexOf(CRLF_CRLF, found[0]));
      const start = before === -1 ? 0 : before;
      const lf = data.indexOf(LF_LF, found[1]);
      const crlf = data.indexOf(CRLF_CRLF, found[1]);
      const after = lf === -1 ? crlf : crlf === -1 ? lf : Math.min(lf, crlf);
      const stop = after === -1 || after > end ? end : after;
      const usage = readUsage(eventData(data.toString('utf8', start, stop)));
      if (usage) {
        this.usage = usage;
        return;
      }
      limit = start;
      if (limit <= 0) return;
    }
  }
}
