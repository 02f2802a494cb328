const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/** The characters that may follow a backslash in a JSON string (`u` is checked apart). */
const ESCAPES = new Uint8Array(128);
for (const c of '"\\/bfnrt') ESCAPES[c.charCodeAt(0)] = 1;

function isHex(b: number): boolean {
  return (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function skipSpace(body: Buffer, i: number): number {
  const n = body.length;
  while (i < n) {
    const b = body[i];
    if (b !== SPACE && b !== LF && b !== CR && b !== TAB) break;
    i++;
  }
  return i;
}

/** End (exclusive) of the string that opens at `i` (a quote), or -1 if it is not a valid JSON string. */
function stringEnd(body: Buffer, i: number): number {
  const n = body.length;
  for (i++; i < n; i++) {
    const b = body[i]!;
    if (b === QUOTE) return i + 1;
    if (b < 0x20) return -1;
    if (b === BACKSLASH) {
      const e = body[++i];
      if (e === 0x75) {
        // \uXXXX
        if (i + 4 >= n || !isHex(body[i + 1]!) || !isHex(body[i + 2]!) || !isHex(body[i + 3]!) || !isHex(body[i + 4]!)) return -1;
        i += 4;
      } else if (e === undefined || e >= 128 || ESCAPES[e] === 0) {
        return -1;
      }
    }
  }
  return -1;
}

function digitsEnd(body: Buffer, i: number): number {
  const n = body.length;
  while (i < n && body[i]! >= ZERO && body[i]! <= NINE) i++;
  return i;
}

/** End (exclusive) of the number that starts at `i`, or -1 if it is not a valid JSON number. */
function numberEnd(body: Buffer, i: number): number {
  if (body[i] === MINUS) i++;
  const first = body[i];
  if (first === ZERO) i++;
  else if (first !== undefined && first > ZERO && first <= NINE) i = digitsEnd(body, i + 1);
  else return -1;
  if (body[i] === DOT) {
    const end = digitsEnd(body, i + 1);
    if (end === i + 1) return -1;
    i = end;
  }
  if (body[i] === LOWER_E || body[i] === UPPER_E) {
    i++;
    if (body[i] === PLUS || body[i] === MINUS) i++;
    const end = digitsEnd(body, i);
    if (end === i) return -1;
    i = end;
  }
  return i;
}

function literalEnd(body: Buffer, i: number, word: Buffer): number {
  return body.length - i >= word.length && body.compare(word, 0, word.length, i, i + word.length) === 0 ? i + word.length : -1;
}

/**
 * Whether `body` is one JSON object (RFC 8259) with only whitespace around it: a byte-by-byte check
 * that builds nothing, with an explicit stack (any depth). Bytes of 0x80 and above are taken as they
 * are inside strings (as `JSON.parse` of the decoded text takes what the decoder makes of them).
 */
export function isJsonObject(body: Buffer): boolean {
  let i = skipSpace(body, 0);
  if (body[i] !== OPEN_BRACE) return false;
  /** The open containers: true for an object, false for an array. */
  const open: boolean[] = [];
  for (;;) {
    // A value starts at i.
    const b = body[i];
    if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      const object = b === OPEN_BRACE;
      i = skipSpace(body, i + 1);
      if (body[i] === (object ? CLOSE_BRACE : CLOSE_BRACKET)) {
        i++;
      } else {
        open.push(object);
        if (object) {
          i = memberValue(body, i);
          if (i === -1) return false;
        }
        continue;
      }
    } else if (b === QUOTE) {
      i = stringEnd(body, i);
    } else if (b === MINUS || (b !== undefined && b >= ZERO && b <= NINE)) {
      i = numberEnd(body, i);
    } else if (b === 0x74) {
      i = literalEnd(body, i, TRUE);
    } else if (b === 0x66) {
      i = literalEnd(body, i, FALSE);
    } else if (b === 0x6e) {
      i = literalEnd(body, i, NULL);
    } else {
      return false;
    }
    if (i === -1) return false;
    // A value ended: a comma and the next one, or the end of its container(s).
    for (;;) {
      if (open.length === 0) return skipSpace(body, i) === body.length;
      i = skipSpace(body, i);
      const object = open[open.length - 1]!;
      const c = body[i];
      if (c === COMMA) {
        i = skipSpace(body, i + 1);
        if (object) {
          i = memberValue(body, i);
          if (i === -1) return false;
        }
        break;
      }
      if (c !== (object ? CLOSE_BRACE : CLOSE_BRACKET)) return false;
      open.pop();
      i++;
    }
  }
}

/** Past `"key":` and the whitespace before the member's value, from `i` at the key; -1 if not so. */
function memberValue(body: Buffer, i: number): number {
  if (body[i] !== QUOTE) return -1;
  i = stringEnd(body, i);
  if (i === -1) return -1;
  i = skipSpace(body, i);
  if (body[i] !== COLON) return -1;
  return skipSpace(body, i + 1);
}
