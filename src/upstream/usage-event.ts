import { endsWithBlankLine } from './sse.js';
import { eventData, firstEventEnd, hasUsageKey, lastEventEnd, lastUsageObject } from './usage.js';

/** Most bytes of an unfinished event held while it could still be the usage event; a longer one is relayed as it comes. */
const MAX_EVENT_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** Whether `data` has a `"usage"` key whose value is an object (`"usage": null`, on every chunk of some upstreams, is not). */
function hasUsageObject(data: Buffer): boolean {
  return hasUsageKey(data) && lastUsageObject(data, 0, data.length) !== null;
}

/** Whether one event's bytes are the stream's usage event: its data is a chunk with empty `choices` and a `usage` object. */
function isUsageEvent(event: Buffer): boolean {
  try {
    const parsed = JSON.parse(eventData(event.toString('utf8'))) as { choices?: unknown; usage?: unknown };
    return Array.isArray(parsed.choices) && parsed.choices.length === 0 && typeof parsed.usage === 'object' && parsed.usage !== null;
  } catch {
    return false;
  }
}

/**
 * Takes the usage event out of a server-sent-event stream, for a client that did not ask for it
 * (the gateway asked the upstream on its behalf, see usageInsert): the event whose `choices` is
 * empty and which carries a `usage` object is dropped, byte for byte; every other byte goes on
 * unchanged and in order. Only an event with a `"usage"` key whose value is an object is parsed.
 *
 * A read that is whole events without a usage object (the common case) is passed on as it is, after
 * one byte search. An unfinished event is held until its blank line comes (up to `MAX_EVENT_BYTES`;
 * past that it goes on as it comes, unread). Events end at a blank line (LF LF or CRLF CRLF).
 */
export class UsageEventDropper {
  /** The unfinished event's bytes. */
  private carry: Buffer | null = null;
  /** The unfinished event grew past MAX_EVENT_BYTES: relayed as it comes, to its end. */
  private passing = false;

  /** The bytes of `chunk` (and of earlier ones) that go on now; `chunk` itself when all of it does. */
  feed(chunk: Buffer): Buffer {
    if (this.carry === null && !this.passing && endsWithBlankLine(chunk) && !hasUsageObject(chunk)) return chunk;
    const buf = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = null;
    const out: Buffer[] = [];
    let pos = 0;
    if (this.passing) {
      const end = firstEventEnd(buf);
      if (end === -1) return buf;
      out.push(buf.subarray(0, end));
      pos = end;
      this.passing = false;
    }
    const end = endsWithBlankLine(buf) ? buf.length : lastEventEnd(buf);
    if (end > pos) {
      this.kept(buf.subarray(pos, end), out);
      pos = end;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      if (rest.length > MAX_EVENT_BYTES) {
        out.push(rest);
        this.passing = true;
      } else {
        this.carry = Buffer.from(rest);
      }
    }
    return out.length === 0 ? EMPTY : out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The unfinished event the stream ended with, if any. */
  finish(): Buffer {
    const rest = this.carry ?? EMPTY;
    this.carry = null;
    return rest;
  }

  /** Pushes the parts of `events` (whole events) that are not the usage event. */
  private kept(events: Buffer, out: Buffer[]): void {
    if (!hasUsageObject(events)) {
      out.push(events);
      return;
    }
    let from = 0;
    let pos = 0;
    while (pos < events.length) {
      const rel = firstEventEnd(events.subarray(pos));
      const end = rel === -1 ? events.length : pos + rel;
      const event = events.subarray(pos, end);
      if (hasUsageObject(event) && isUsageEvent(event)) {
        if (pos > from) out.push(events.subarray(from, pos));
        from = end;
      }
      pos = end;
    }
    if (from < events.length) out.push(events.subarray(from));
  }
}
