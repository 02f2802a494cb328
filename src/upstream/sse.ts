const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const DONE_TEXT = Buffer.from('[DONE]');
/** The longest line that can still turn out to be the end marker (`data: [DONE]`). */
const DONE_LINE = Buffer.from('data: [DONE]');
const DONE_LINE_TIGHT = Buffer.from('data:[DONE]');
const EMPTY = Buffer.alloc(0);

/**
 * Most bytes held back as the end of the stream. A `[DONE]` event with more than this of comments or
 * other fields around its data, or followed by more blank lines, is relayed as it comes.
 */
export const MAX_HELD_BYTES = 4096;

/** What the event in progress has had: no data line, one whose value is exactly `[DONE]`, or other data. */
const NO_DATA = 0;
const DONE = 1;
const OTHER_DATA = 2;

/** What a line is, as far as the end of the stream goes. */
const NOT_DATA = 0;
const DONE_DATA = 1;
const DATA = 2;
/** The start of a line too short to tell (a prefix of `data: [DONE]` or `data:[DONE]`). */
const UNDECIDED = 3;

/** Whether `chunk` ends with a blank line: the end of an event, whoever came before it. */
export function endsWithBlankLine(chunk: Buffer): boolean {
  const n = chunk.length;
  if (n < 2 || chunk[n - 1] !== LF) return false;
  return chunk[n - 2] === LF || (n >= 4 && chunk[n - 2] === CR && chunk[n - 3] === LF && chunk[n - 4] === CR);
}

/** The kind of the line `buf[s, e)`; `complete` when its terminator has been seen. */
function lineKind(buf: Buffer, s: number, e: number, complete: boolean): number {
  const len = e - s;
  if (!complete && len <= DONE_LINE.length) {
    // A start of the end marker, spaced or not, cannot be told yet.
    if (buf.compare(DONE_LINE, 0, len, s, e) === 0 || (len <= DONE_LINE_TIGHT.length && buf.compare(DONE_LINE_TIGHT, 0, len, s, e) === 0)) {
      return UNDECIDED;
    }
  }
  if (len < 4 || buf[s] !== 0x64 || buf[s + 1] !== 0x61 || buf[s + 2] !== 0x74 || buf[s + 3] !== 0x61) return NOT_DATA; // "data"
  if (len === 4) return complete ? DATA : UNDECIDED; // `data` alone is a data line with an empty value
  if (buf[s + 4] !== COLON) return NOT_DATA; // a field with a longer name
  if (!complete) return DATA; // not a start of the marker (checked above)
  let v = s + 5;
  if (buf[v] === SPACE) v++;
  return e - v === DONE_TEXT.length && buf.compare(DONE_TEXT, 0, DONE_TEXT.length, v, e) === 0 ? DONE_DATA : DATA;
}

/**
 * Splits an upstream's server-sent events as they arrive, to relay their bytes unchanged while
 * holding back the end of the stream: an event whose whole data is `[DONE]` (from its data line on)
 * waits until `finish()`, so the trace is committed before a client can see the stream end. Text
 * that merely contains the marker (in a JSON string, in another field) is not the end.
 *
 * Lines are read as the SSE spec reads them (ended by CRLF, LF or CR; a CR at the end of one read and
 * a LF first in the next are one terminator), carrying to the next read only the start of a line
 * that could still be the marker (at most 12 bytes). Everything else goes out with the read it came
 * in, so the caller's backpressure covers it; what is held is at most `MAX_HELD_BYTES`. A read that
 * is whole events without `[DONE]` in it (the common case) costs one byte search.
 */
export class SseFramer {
  /** The held end of the stream: the `[DONE]` event from its data line on (copies). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The held event has ended (its blank line came): it is the end, unless another event follows. */
  private heldComplete = false;
  /** The start of a line that could still be the marker, read again with the next chunk. */
  private carry: Buffer | null = null;
  /** A line's start was handed on (relayed or held); its rest comes first in the next chunk. */
  private midLine = false;
  /** The last byte read was a CR ending a line: a LF first in the next chunk belongs to it. */
  private afterCR = false;
  private event = NO_DATA;

  /** The bytes of `chunk` (and of earlier ones) that go out now, in order; `chunk` itself when all of it does. */
  feed(chunk: Buffer): Buffer {
    if (this.carry === null && this.event !== DONE && !this.heldComplete && endsWithBlankLine(chunk) && chunk.indexOf(DONE_TEXT) === -1) {
      // Whole events, none of which can be the end.
      this.event = NO_DATA;
      this.midLine = false;
      this.afterCR = false;
      return chunk;
    }
    return this.read(chunk);
  }

  /** What is left at the end of the stream (the held end, an unfinished line), to send after the commit. */
  finish(): Buffer {
    const rest = this.carry === null ? this.held : [...this.held, this.carry];
    this.held = [];
    this.heldBytes = 0;
    this.carry = null;
    return rest.length === 0 ? EMPTY : rest.length === 1 ? rest[0]! : Buffer.concat(rest);
  }

  /** The bytes being read (a carried line's start, then the chunk). */
  private buf: Buffer = EMPTY;
  /** Start of the bytes of `buf` not yet handed on (relayed or held). */
  private from = 0;
  /** What goes out of this read, in order. */
  private readonly out: Buffer[] = [];

  private read(chunk: Buffer): Buffer {
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    this.buf = buf;
    this.from = 0;
    const n = buf.length;
    let pos = 0;
    if (this.afterCR && buf[0] === LF) pos = 1;
    this.afterCR = false;
    // The next CR and LF, each found once and searched again only once passed.
    let nextLF = buf.indexOf(LF, pos);
    let nextCR = buf.indexOf(CR, pos);
    while (pos < n) {
      if (nextLF !== -1 && nextLF < pos) nextLF = buf.indexOf(LF, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = buf.indexOf(CR, pos);
      const end = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      if (end === -1) {
        // An unfinished line: carried while it could still be the marker, else handed on.
        if (!this.midLine && this.event !== OTHER_DATA) {
          const kind = lineKind(buf, pos, n, false);
          if (kind === UNDECIDED) {
            this.handOn(pos);
            this.carry = Buffer.from(buf.subarray(pos));
            return this.joined();
          }
          this.startLine(kind, pos);
        }
        this.midLine = true;
        break;
      }
      let next = end + 1;
      if (buf[end] === CR) {
        if (next === n) this.afterCR = true;
        else if (buf[next] === LF) next++;
      }
      if (this.midLine) {
        this.midLine = false; // the rest of a line whose start was handed on
      } else if (end === pos) {
        // A blank line ends the event.
        if (this.event === DONE) this.heldComplete = true;
        this.event = NO_DATA;
      } else {
        this.startLine(lineKind(buf, pos, end, true), pos);
      }
      pos = next;
    }
    this.handOn(n);
    return this.joined();
  }

  /** Hands on `buf[from, to)`: out, or to the held end while there is one. */
  private handOn(to: number): void {
    const from = this.from;
    if (to <= from) return;
    const buf = this.buf;
    const part = from === 0 && to === buf.length ? buf : buf.subarray(from, to);
    this.from = to;
    if (this.event !== DONE && !this.heldComplete) {
      this.out.push(part);
      return;
    }
    this.held.push(Buffer.from(part));
    this.heldBytes += part.length;
    if (this.heldBytes > MAX_HELD_BYTES) this.release(this.heldComplete ? NO_DATA : OTHER_DATA);
  }

  /** A line of `kind` starts at `pos`: the event's state moves, and the held end starts or is let go. */
  private startLine(kind: number, pos: number): void {
    if (this.heldComplete) {
      // Another event after the held one: that was not the end.
      this.handOn(pos);
      this.release(NO_DATA);
    }
    if (kind === NOT_DATA) return;
    if (kind === DONE_DATA && this.event === NO_DATA) {
      this.handOn(pos);
      this.event = DONE;
      return;
    }
    if (this.event === DONE) {
      // More data in the event than [DONE]: not the end.
      this.handOn(pos);
      this.release(OTHER_DATA);
      return;
    }
    this.event = OTHER_DATA;
  }

  /** Sends what was held, and goes on with the event in `state`. */
  private release(state: number): void {
    for (const part of this.held) this.out.push(part);
    this.held = [];
    this.heldBytes = 0;
    this.heldComplete = false;
    this.event = state;
  }

  private joined(): Buffer {
    const out = this.out;
    const joined = out.length === 0 ? EMPTY : out.length === 1 ? out[0]! : Buffer.concat(out);
    out.length = 0;
    this.buf = EMPTY;
    return joined;
  }
}
