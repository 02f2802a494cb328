export interface Usage {
  promptTokens: number | null;
  completionTokens: number | null;
}

function tokenCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/** Usage from a parsed chat completion (or stream chunk); null when it carries none. */
export function usageOf(parsed: unknown): Usage | null {
  if (typeof parsed !== 'object' || parsed === null) return null;
  const usage = (parsed as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  return { promptTokens: tokenCount(u.prompt_tokens), completionTokens: tokenCount(u.completion_tokens) };
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
function lastUsageObject(body: Buffer, start: number, end: number): [number, number] | null {
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
 * Usage from a whole (non-streamed) chat completion without parsing the answer: the value of the
 * last `"usage"` key, which OpenAI-shaped answers put at the end, is found from the tail and parsed
 * on its own. Null when there is none.
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
/** Most bytes of one unfinished event kept while looking for usage; a longer event is not read. */
const MAX_EVENT_BYTES = 256 * 1024;

/** Whether `"usage"` occurs in `data`: a plain loop for small chunks (a native search costs more to call). */
function hasUsageKey(data: Buffer): boolean {
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

function endsWithBlankLine(data: Buffer): boolean {
  const n = data.length;
  if (n < 2 || data[n - 1] !== 0x0a) return false;
  return data[n - 2] === 0x0a || (n >= 4 && data[n - 2] === 0x0d && data[n - 3] === 0x0a && data[n - 4] === 0x0d);
}

/** End (exclusive) of the last complete event in `data`: just past its blank line, or -1. */
function lastEventEnd(data: Buffer): number {
  const lf = data.lastIndexOf(LF_LF);
  const crlf = data.lastIndexOf(CRLF_CRLF);
  return Math.max(lf === -1 ? -1 : lf + 2, crlf === -1 ? -1 : crlf + 4);
}

/** The `data:` lines of one server-sent event, joined as the SSE spec joins them. */
function eventData(text: string): string {
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
 * parsing the events: each chunk is searched for a `"usage"` key with an object value (a native
 * byte search), and only an event that has one is parsed. The last usage seen wins. An unfinished
 * event is carried to the next chunk only while it is incomplete.
 */
export class StreamUsageReader {
  usage: Usage | null = null;
  private partial: Buffer | null = null;

  feed(chunk: Buffer): void {
    // The common case: the chunk is whole events (it ends with a blank line); one byte search.
    if (this.partial === null && endsWithBlankLine(chunk)) {
      if (hasUsageKey(chunk)) this.read(chunk, chunk.length);
      return;
    }
    const data = this.partial === null ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = null;
    const end = lastEventEnd(data);
    if (end < data.length) {
      const rest = data.length - Math.max(end, 0);
      this.partial = rest <= MAX_EVENT_BYTES ? Buffer.from(data.subarray(data.length - rest)) : null;
    }
    if (end > 0) this.read(data, end);
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
