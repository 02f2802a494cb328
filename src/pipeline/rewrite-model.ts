/**
 * The body an upstream receives: the client's own bytes with only the value of the top-level
 * `model` member replaced. Parsing and serializing the request again would change what the client
 * sent: integers past 2^53 are rounded (a `seed` of 9007199254740993 becomes ...992), `1.0`
 * becomes `1`, `\u00e9` becomes `é`, integer-like keys are reordered. Splicing also skips a JSON.stringify
 * per attempt.
 */

/** Where a member's value lies in the body: bytes `start` (included) to `end` (excluded). */
export interface ValueSpan {
  start: number;
  end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** `"model"`, quotes included. */
const MODEL_KEY = Buffer.from('"model"');
/** `"stream_options"`, quotes included. */
const STREAM_OPTIONS_KEY = Buffer.from('"stream_options"');

function isJsonSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(body: Uint8Array, i: number): number {
  while (isJsonSpace(body[i])) i++;
  return i;
}

function hasBackslash(body: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (body[k] === BACKSLASH) return true;
  return false;
}

/** From a string's opening quote to just past its closing one (-1 if it does not close). */
function skipString(body: Buffer, i: number): number {
  let from = i + 1;
  for (;;) {
    const quote = body.indexOf(QUOTE, from);
    if (quote < 0) return -1;
    // The quote closes the string unless an odd number of backslashes escapes it.
    let backslashes = 0;
    for (let k = quote - 1; body[k] === BACKSLASH; k--) backslashes++;
    if ((backslashes & 1) === 0) return quote + 1;
    from = quote + 1;
  }
}

/** From a value's first byte to just past its last one (-1 if it is cut short). */
function skipValue(body: Buffer, i: number): number {
  const first = body[i];
  if (first === QUOTE) return skipString(body, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < body.length; ) {
      const c = body[j];
      if (c === QUOTE) {
        j = skipString(body, j);
        if (j < 0) return -1;
        continue;
      }
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < body.length) {
    const c = body[j];
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isJsonSpace(c)) break;
    j++;
  }
  return j > i ? j : -1;
}

/**
 * The span of the top-level `model` member's value in a body that `JSON.parse` accepted as an
 * object. Null when there is no such member, or it is there twice (parsers disagree on which one
 * counts); the caller then serializes the parsed request instead.
 */
export function findModelValue(body: Buffer): ValueSpan | null {
  return findMemberValue(body, MODEL_KEY, 'model');
}

/** The same for the top-level `stream_options` member. */
export function findStreamOptionsValue(body: Buffer): ValueSpan | null {
  return findMemberValue(body, STREAM_OPTIONS_KEY, 'stream_options');
}

function findMemberValue(body: Buffer, key: Buffer, name: string): ValueSpan | null {
  let i = skipSpace(body, 0);
  if (body[i] !== OPEN_BRACE) return null;
  i = skipSpace(body, i + 1);
  let found: ValueSpan | null = null;
  while (body[i] === QUOTE) {
    const keyEnd = skipString(body, i);
    if (keyEnd < 0) return null;
    const isKey =
      (keyEnd - i === key.length && body.compare(key, 0, key.length, i, keyEnd) === 0) ||
      // A key with escapes may still spell the name ("mod\u0065l"): decoded, it counts like the parser's.
      (hasBackslash(body, i + 1, keyEnd - 1) && JSON.parse(body.toString('utf8', i, keyEnd)) === name);
    i = skipSpace(body, keyEnd);
    if (body[i] !== COLON) return null;
    i = skipSpace(body, i + 1);
    const valueEnd = skipValue(body, i);
    if (valueEnd < 0) return null;
    if (isKey) {
      if (found !== null) return null;
      found = { start: i, end: valueEnd };
    }
    i = skipSpace(body, valueEnd);
    if (body[i] === COMMA) {
      i = skipSpace(body, i + 1);
      continue;
    }
    return body[i] === CLOSE_BRACE ? found : null;
  }
  return null;
}

/**
 * Where `"include_usage":true` goes in a stream request's bytes, so the upstream sends the stream's
 * usage: right after the opening `{` of `stream_options` when the request has that object (`at`
 * its span), else a whole `"stream_options":{"include_usage":true}` member right after the body's
 * opening `{`. Null when the bytes cannot say (no `{` first, `stream_options` not an object); the
 * caller then serializes the parsed request instead. The caller has checked that the client's
 * `stream_options` has no `include_usage` of its own (a key given twice is read differently by
 * different parsers).
 */
export function usageInsert(body: Buffer, at: ValueSpan | null): { at: number; text: string } | null {
  if (at === null) {
    const open = skipSpace(body, 0);
    if (body[open] !== OPEN_BRACE) return null;
    const empty = body[skipSpace(body, open + 1)] === CLOSE_BRACE;
    return { at: open + 1, text: empty ? '"stream_options":{"include_usage":true}' : '"stream_options":{"include_usage":true},' };
  }
  if (body[at.start] !== OPEN_BRACE) return null;
  const empty = body[skipSpace(body, at.start + 1)] === CLOSE_BRACE;
  return { at: at.start + 1, text: empty ? '"include_usage":true' : '"include_usage":true,' };
}

/**
 * The body with the value at `at` replaced by `model` as a JSON string and, when `insert` is given
 * (an offset before `at.start` or after `at.end`), `insert.text` put in at `insert.at`.
 */
export function withModelAndInsert(body: Buffer, at: ValueSpan, model: string, insert: { at: number; text: string }): Buffer {
  const value = JSON.stringify(model);
  const edits =
    insert.at <= at.start
      ? [{ start: insert.at, end: insert.at, text: insert.text }, { start: at.start, end: at.end, text: value }]
      : [{ start: at.start, end: at.end, text: value }, { start: insert.at, end: insert.at, text: insert.text }];
  const parts: Buffer[] = [];
  let from = 0;
  for (const edit of edits) {
    parts.push(body.subarray(from, edit.start), Buffer.from(edit.text));
    from = edit.end;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

/** The body with the value at `at` replaced by `model` as a JSON string. */
export function withModel(body: Buffer, at: ValueSpan, model: string): Buffer {
  const value = JSON.stringify(model);
  const valueLength = Buffer.byteLength(value);
  const out = Buffer.allocUnsafe(body.length - (at.end - at.start) + valueLength);
  body.copy(out, 0, 0, at.start);
  out.write(value, at.start);
  body.copy(out, at.start + valueLength, at.end);
  return out;
}
