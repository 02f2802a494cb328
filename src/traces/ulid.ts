import { randomFillSync } from 'node:crypto';

/**
 * Monotonic ULIDs (https://github.com/ulid/spec), as `ulid`'s `monotonicFactory` makes them: within
 * one millisecond (or when the clock goes back) the 80-bit random part of the previous id is
 * incremented, so ids sort in the order they were made. Written for the hot path: the `ulid`
 * package draws each random character with its own `crypto.getRandomValues` call whenever the
 * millisecond changes; this draws from a pooled buffer and keeps the random part as digits.
 */

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODES = Array.from(ENCODING, (c) => c.charCodeAt(0));
const TIME_LEN = 10;
const RANDOM_LEN = 16;
const POOL_SIZE = 4096;

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

  const increment = () => {
    for (let i = RANDOM_LEN - 1; i >= 0; i--) {
      if (digits[i] !== 31) {
        digits[i]! += 1;
        return;
      }
      digits[i] = 0;
    }
    // 2^80 ids in one millisecond: the spec's overflow.
    throw new Error('ULID random part overflowed within one millisecond');
  };

  return function nextUlid(): string {
    const time = now();
    if (time <= lastTime) {
      increment();
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
