import { eventData, firstEventEnd, lastBytes, splitEventEnd } from './usage.js';

/**
 * What the gateway reads of a Responses API answer besides its usage (usage.ts): the response's id
 * (`resp_…`), which a later request's `previous_response_id` names, and whether a stream ended with
 * the response failed. Nothing is changed: the client gets the upstream's bytes.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** Longest id kept (the trace's `response_id` column holds up to 256 characters). */
const MAX_ID_LENGTH = 256;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(body: Buffer, start: number): number {
  for (let i = start + 1; i < body.length; i++) {
    const b = body[i];
    if (b === BACKSLASH) i++;
    else if (b === QUOTE) return i;
  }
  return -1;
}

/**
 * The string value of the top-level `id` key of a whole JSON answer, read from the bytes without
 * parsing the answer (OpenAI puts `id` first, so this stops after a few bytes); null when there is
 * none, or it is not a plain string of at most 256 characters.
 */
export function topLevelId(body: Buffer): string | null {
  let depth = 0;
  /** At depth 1, the next string is a key (after `{` or `,`). */
  let keyNext = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === QUOTE) {
      const end = stringEnd(body, i);
      if (end === -1) return null;
      if (depth === 1 && keyNext && end - i === 3 && body[i + 1] === 0x69 && body[i + 2] === 0x64) {
        let v = end + 1;
        while (isSpace(body[v])) v++;
        if (body[v] !== COLON) return null;
        v++;
        while (isSpace(body[v])) v++;
        if (body[v] !== QUOTE) return null;
        const close = stringEnd(body, v);
        if (close === -1 || close - v - 1 > MAX_ID_LENGTH) return null;
        const escaped = body.indexOf(BACKSLASH, v);
        if (escaped !== -1 && escaped < close) return null;
        return body.toString('utf8', v + 1, close);
      }
      keyNext = false;
      i = end;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      depth++;
      keyNext = depth === 1 && b === OPEN_BRACE;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
      keyNext = false;
    } else if (b === COMMA && depth === 1) {
      keyNext = true;
    }
  }
  return null;
}

const LF_LF = Buffer.from('\n\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** Most bytes of one event kept while reading it; a longer event is skipped to its end, unread. */
const MAX_EVENT_BYTES = 1024 * 1024;
/** The events read: their names (an event's `type`, also its SSE `event:` field) are searched for as bytes first. */
const READ_TYPES = ['response.created', 'response.completed', 'response.failed', 'response.incomplete', 'error'] as const;
const TYPE_MARKS = READ_TYPES.map((t) => Buffer.from(`"${t}"`));

function typeMarked(event: Buffer): boolean {
  for (const mark of TYPE_MARKS) if (event.indexOf(mark) !== -1) return true;
  return false;
}

/** End (exclusive) of the first complete event in `data` from `from`, or -1. */
function eventEnd(data: Buffer, from: number): number {
  const lf = data.indexOf(LF_LF, from);
  const crlf = data.indexOf(CRLF_CRLF, from);
  if (lf === -1) return crlf === -1 ? -1 : crlf + 4;
  return crlf === -1 || lf + 2 < crlf + 4 ? lf + 2 : crlf + 4;
}

/**
 * Reads a Responses API stream as it is relayed (`feed` sees every byte, in order): the response id
 * from `response.created` (or a later `response.*` event that carries the response), and a failure:
 * a `response.failed` event (the response's `error.message`), or an `error` event (its `message`).
 * Only events whose bytes name one of these types are parsed; the text deltas are not. Events end at
 * a blank line (LF LF or CRLF CRLF); an event longer than 1 MiB is skipped.
 */
export class ResponseStreamReader {
  responseId: string | null = null;
  /** Why the response failed, when the stream said it did. */
  failure: string | null = null;
  private carry: Buffer | null = null;
  private skipping = false;

  feed = (chunk: Buffer): void => {
    let data = chunk;
    if (this.carry !== null) {
      data = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let pos = 0;
    if (this.skipping) {
      const end = eventEnd(data, 0);
      if (end === -1) return;
      this.skipping = false;
      pos = end;
    }
    for (;;) {
      const end = eventEnd(data, pos);
      if (end === -1) break;
      const event = data.subarray(pos, end);
      if (typeMarked(event)) this.read(event);
      pos = end;
    }
    if (pos < data.length) {
      const rest = data.subarray(pos);
      if (rest.length > MAX_EVENT_BYTES) this.skipping = true;
      else this.carry = Buffer.from(rest);
    }
  };

  private read(event: Buffer): void {
    let parsed: { type?: unknown; response?: { id?: unknown; error?: { message?: unknown } | null }; message?: unknown };
    try {
      parsed = JSON.parse(eventData(event.toString('utf8'))) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const type = parsed.type;
    const response = typeof parsed.response === 'object' && parsed.response !== null ? parsed.response : null;
    if (response !== null && typeof response.id === 'string' && response.id.length <= MAX_ID_LENGTH && this.responseId === null) {
      this.responseId = response.id;
    }
    if (type === 'response.failed') {
      const message = response?.error?.message;
      this.failure = typeof message === 'string' ? `response failed: ${message}` : 'response failed';
    } else if (type === 'error') {
      this.failure = typeof parsed.message === 'string' ? `error event: ${parsed.message}` : 'error event';
    }
  }
}

/** Bytes of an event's start read to tell whether it ends the response (its `event:` line, or its data's `type`, come first). */
const DECIDE_BYTES = 256;
const TERMINAL_TYPES = ['response.completed', 'response.failed', 'response.incomplete'];
/** An `event:` line naming the type (at a line's start), or the data's `"type"` key (inside a JSON string its quotes would be escaped). */
const EVENT_MARKS = TERMINAL_TYPES.flatMap((t) => [Buffer.from(`event: ${t}`), Buffer.from(`event:${t}`)]);
const TERMINAL_TYPE_MARKS = TERMINAL_TYPES.map((t) => Buffer.from(`"type":"${t}"`));
const EMPTY = Buffer.alloc(0);

function terminalWithin(data: Buffer, from: number, to: number): boolean {
  const window = data.subarray(from, to);
  for (const mark of TERMINAL_TYPE_MARKS) if (window.indexOf(mark) !== -1) return true;
  for (const mark of EVENT_MARKS) {
    for (let at = window.indexOf(mark); at !== -1; at = window.indexOf(mark, at + 1)) {
      const before = window[at - 1];
      if (at === 0 || before === 0x0a || before === 0x0d) return true;
    }
  }
  return false;
}

/**
 * Holds back the end of a Responses API stream, as SseFramer holds a chat stream's `[DONE]`: the
 * event that ends the response (`response.completed`, `response.failed`, `response.incomplete`)
 * and whatever follows it wait until `finish()`, so the trace (and the response id a follow-up's
 * `previous_response_id` is looked up by) is committed before a client can see the response end.
 * Every other byte goes on in order with the read it came in, but the start of an event still too
 * short to tell (under 256 bytes, no blank line yet), which waits for the next read. An event whose
 * type shows only past its first 256 bytes is relayed as it comes.
 */
export class ResponseEndHolder {
  /** The end of the response and everything after it. */
  private held: Buffer[] | null = null;
  /** The start of an event not yet told. */
  private carry: Buffer | null = null;
  /** What went on ends inside an event (its start went on too). */
  private midEvent = false;
  /** The last three bytes that went on, while midEvent (a blank line may be split across reads). */
  private tail = -1;

  /** The bytes of `chunk` (and of earlier ones) that go on now; `chunk` itself when all of it does. */
  feed(chunk: Buffer): Buffer {
    if (this.held !== null) {
      this.held.push(Buffer.from(chunk));
      return EMPTY;
    }
    const data = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = null;
    let start = 0;
    if (this.midEvent) {
      const split = splitEventEnd(this.tail, data);
      const first = firstEventEnd(data);
      const end = split !== -1 && (first === -1 || split < first) ? split : first;
      if (end === -1) {
        this.tail = lastBytes(this.tail, data);
        return data;
      }
      start = end;
    }
    this.midEvent = false;
    while (start < data.length) {
      const rel = firstEventEnd(data.subarray(start));
      const end = rel === -1 ? -1 : start + rel;
      if (terminalWithin(data, start, Math.min(end === -1 ? data.length : end, start + DECIDE_BYTES))) {
        this.held = [Buffer.from(data.subarray(start))];
        return data.subarray(0, start);
      }
      if (end === -1) {
        if (data.length - start < DECIDE_BYTES) {
          this.carry = Buffer.from(data.subarray(start));
          return data.subarray(0, start);
        }
        this.midEvent = true;
        this.tail = lastBytes(-1, data);
        return data;
      }
      start = end;
    }
    return data;
  }

  /** What was held: the end of the response (and an event start never told). */
  finish(): Buffer {
    const parts = this.carry === null ? [] : [this.carry];
    if (this.held !== null) parts.push(...this.held);
    this.carry = null;
    this.held = null;
    return parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}
