import { eventData } from './usage.js';

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
