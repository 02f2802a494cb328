import { randomFillSync } from 'node:crypto';

/**
 * Monotonic ULIDs (https://github.com/ulid/spec): within one millisecond (or when the clock goes
 * back) the 80-bit random part of the previous id grows by a random step of 1 to 2^40, so ids sort
 * in the order they were made and the next id cannot be guessed from the last (`ulid`'s
 * `monotonicFactory` adds 1, which makes it a counter within the millisecond). Written for the hot path: the `ulid`
 * package draws each random character with its own `crypto.getRandomValues` call whenever the
 * millisecond changes; this draws from a pooled buffer and keeps the random part as digits.
 */

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODES = Array.from(ENCODING, (c) => c.charCodeAt(0));
const TIME_LEN = 10;
const RANDOM_LEN = 16;
const POOL_SIZE = 4096;
/** Base-32 digits of the random step between two ids of one millisecond. */
const STEP_DIGITS = 8;

export function monotonicUlidFactory(now: () => number = Date.now): () => string {
  const pool = Buffer.allocUnsafe(POOL_SIZE);
  let poolOffset = POOL_SIZE;
  let lastTime = -1;
  let timePart = '';
  // Base-32 digits of the random part, most significant first.
  const digits = new Uint8Array(RANDOM_LEN);
  const chars = new Array<number>(RANDOM_LEN);

  const fresh = () => {
    if (poolOffset + RANDOM_LEN > POOL_SIZE) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
    for (let i = 0; i < RANDOM_LEN; i++) digits[i] = pool[poolOffset + i]! & 31;
    poolOffset += RANDOM_LEN;
  };

  /** Adds a random step of 1 to 32^STEP_DIGITS (2^40) to the random part. */
  const advance = () => {
    if (poolOffset + STEP_DIGITS > POOL_SIZE) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    let carry = 1;
    for (let i = RANDOM_LEN - 1; i >= 0; i--) {
      const step = i >= RANDOM_LEN - STEP_DIGITS ? pool[poolOffset + (RANDOM_LEN - 1 - i)]! & 31 : 0;
      const sum = digits[i]! + step + carry;
      digits[i] = sum & 31;
      carry = sum >> 5;
    }
    poolOffset += STEP_DIGITS;
    // Past 2^80 within one millisecond (at least 2^40 ids): the spec's overflow.
    if (carry !== 0) throw new Error('ULID random part overflowed within one millisecond');
  };

  return function nextUlid(): string {
    const time = now();
    if (time <= lastTime) {
      advance();
    } else {
      lastTime = time;
      timePart = encodeTime(time);
      fresh();
    }
    for (let i = 0; i < RANDOM_LEN; i++) chars[i] = CODES[digits[i]!]!;
    return timePart + String.fromCharCode.apply(null, chars);
  };
}

function encodeTime(time: number): string {
  if (!Number.isInteger(time) || time < 0 || time > 2 ** 48 - 1) throw new RangeError(`cannot encode time ${time} in a ULID`);
  let out = '';
  let t = time;
  for (let i = 0; i < TIME_LEN; i++) {
    out = ENCODING[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}
