/**
 * Features of a query for the contextual policy, hashed into a fixed, small dense space
 * (FEATURE_DIM slots), so that a model's full covariance fits the decision budget:
 * - slot 0: a bias, always 1;
 * - the query class: one of CLASS_SLOTS slots (hashed; classes that collide share a weight);
 * - the last user message's length: one of five buckets (<64, <256, <1024, <4096, ≥4096 characters);
 * - tools, images, response_format: one slot each, 1 when present;
 * - the words and word pairs of the first `textChars` characters of the last user message, signed-
 *   hashed into USER_SLOTS slots (a random projection of the term counts), the group scaled to unit
 *   length; the same for the system prompt, into SYSTEM_SLOTS slots.
 * Memory does not grow with the vocabulary; prompts of one template map to nearly the same vector.
 */

export const BIAS_SLOT = 0;
const CLASS_BASE = 1;
const CLASS_SLOTS = 16;
const LENGTH_BASE = CLASS_BASE + CLASS_SLOTS;
const LENGTH_LIMITS = [64, 256, 1024, 4096];
const LENGTH_SLOTS = LENGTH_LIMITS.length + 1;
const FLAG_BASE = LENGTH_BASE + LENGTH_SLOTS;
const TOOLS_SLOT = FLAG_BASE;
const IMAGES_SLOT = FLAG_BASE + 1;
const FORMAT_SLOT = FLAG_BASE + 2;
const USER_BASE = FLAG_BASE + 3;
const USER_SLOTS = 16;
const SYSTEM_BASE = USER_BASE + USER_SLOTS;
const SYSTEM_SLOTS = 8;
/** Slots in all. */
export const FEATURE_DIM = SYSTEM_BASE + SYSTEM_SLOTS;

/** Characters of a prompt that features read when the store keeps whole prompts. */
export const FULL_TEXT_CHARS = 512;

/**
 * How much of a prompt the features read: what the trace store keeps of it (`traces.storePrompts`),
 * so that a rebuild from the store sees what live routing saw — the first `truncateChars` characters,
 * FULL_TEXT_CHARS with whole prompts, none without prompts (then only class, length and flags).
 */
export function featureTextChars(storePrompts: 'full' | 'truncated' | 'none', truncateChars: number): number {
  if (storePrompts === 'none') return 0;
  if (storePrompts === 'full') return FULL_TEXT_CHARS;
  return Math.min(truncateChars, FULL_TEXT_CHARS);
}

/** What the features are read from (a stored trace has all but the system prompt and the flags). */
export interface FeatureInput {
  /** The last user message (only its first `textChars` characters are read). */
  query: string;
  /** Its full length (a trace keeps the length even when it keeps a truncated text). */
  queryLength: number;
  system: string;
  queryClass: string;
  tools: boolean;
  images: boolean;
  responseFormat: boolean;
}

/** A sparse vector over the slots: `size` (slot, value) pairs, slots distinct and increasing. */
export interface FeatureVector {
  readonly index: readonly number[];
  readonly value: readonly number[];
  readonly size: number;
}

/** One named feature of a query: a word, pair, class, bucket or flag, its slot and signed value. */
export interface NamedFeature {
  name: string;
  slot: number;
  value: number;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SEED_USER_WORD = 0x1b873593;
const SEED_USER_PAIR = 0x5bd1e995;
const SEED_SYSTEM_WORD = 0x27d4eb2f;
const SEED_SYSTEM_PAIR = 0x165667b1;

/** murmur3's finalizer: spreads the FNV hash over all bits. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashString(text: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/** Lower-cased letters, digits and anything outside ASCII are word characters. */
function wordCode(c: number): number {
  if (c >= 97 && c <= 122) return c;
  if (c >= 65 && c <= 90) return c + 32;
  if (c >= 48 && c <= 57) return c;
  if (c > 127) return c;
  return -1;
}

export function lengthSlot(length: number): number {
  let b = 0;
  while (b < LENGTH_LIMITS.length && length >= LENGTH_LIMITS[b]!) b++;
  return LENGTH_BASE + b;
}

function lengthName(slot: number): string {
  const b = slot - LENGTH_BASE;
  if (b === 0) return `length:<${LENGTH_LIMITS[0]}`;
  if (b === LENGTH_LIMITS.length) return `length:≥${LENGTH_LIMITS[b - 1]}`;
  return `length:${LENGTH_LIMITS[b - 1]}–${LENGTH_LIMITS[b]! - 1}`;
}

export function classSlot(queryClass: string): number {
  return CLASS_BASE + (fmix(hashString(queryClass)) % CLASS_SLOTS);
}

/** What kind of feature a slot holds, for explanations of slots without a name. */
export function slotKind(slot: number): string {
  if (slot === BIAS_SLOT) return '(bias)';
  if (slot < LENGTH_BASE) return `class slot ${slot - CLASS_BASE}`;
  if (slot < FLAG_BASE) return lengthName(slot);
  if (slot === TOOLS_SLOT) return 'tools';
  if (slot === IMAGES_SLOT) return 'images';
  if (slot === FORMAT_SLOT) return 'response_format';
  if (slot < SYSTEM_BASE) return `user words #${slot - USER_BASE}`;
  return `system words #${slot - SYSTEM_BASE}`;
}

/** True for the slots of hashed words (their names are lists of words). */
export function isTextSlot(slot: number): boolean {
  return slot >= USER_BASE;
}

/** Turns queries into feature vectors; one extractor per policy (it keeps scratch space). */
export class FeatureExtractor {
  private readonly dense = new Float64Array(FEATURE_DIM);
  private named: NamedFeature[] | null = null;

  constructor(readonly textChars: number) {}

  /** The features of one query; with `named`, each contributing feature is also listed there. */
  extract(input: FeatureInput, named?: NamedFeature[]): FeatureVector {
    const dense = this.dense;
    dense.fill(0);
    this.named = named ?? null;
    dense[BIAS_SLOT] = 1;
    const c = classSlot(input.queryClass);
    dense[c] = 1;
    if (named) {
      named.push({ name: '(bias)', slot: BIAS_SLOT, value: 1 });
      named.push({ name: `class:${input.queryClass}`, slot: c, value: 1 });
    }
    // A negative length: unknown (per-class sums), no bucket.
    if (input.queryLength >= 0) {
      const l = lengthSlot(input.queryLength);
      dense[l] = 1;
      named?.push({ name: lengthName(l), slot: l, value: 1 });
    }
    if (input.tools) this.flag(TOOLS_SLOT, 'tools');
    if (input.images) this.flag(IMAGES_SLOT, 'images');
    if (input.responseFormat) this.flag(FORMAT_SLOT, 'response_format');
    this.text(input.query, USER_BASE, USER_SLOTS, SEED_USER_WORD, SEED_USER_PAIR, 'user');
    this.text(input.system, SYSTEM_BASE, SYSTEM_SLOTS, SEED_SYSTEM_WORD, SEED_SYSTEM_PAIR, 'system');
    // Plain arrays: a pair of typed arrays costs more to allocate than the rest of a short prompt's features.
    const index: number[] = [];
    const value: number[] = [];
    for (let i = 0; i < FEATURE_DIM; i++) {
      if (dense[i] !== 0) {
        index.push(i);
        value.push(dense[i]!);
      }
    }
    this.named = null;
    return { index, value, size: index.length };
  }

  private flag(slot: number, name: string): void {
    this.dense[slot] = 1;
    this.named?.push({ name, slot, value: 1 });
  }

  /** Signed-hashed term counts of words and word pairs, scaled to unit length as a group. */
  private text(text: string, base: number, slots: number, wordSeed: number, pairSeed: number, prefix: string): void {
    const n = Math.min(text.length, this.textChars);
    if (n === 0) return;
    const dense = this.dense;
    const named = this.named;
    const firstNamed = named?.length ?? 0;
    let h = 0;
    let start = -1;
    let prev = 0;
    let prevStart = -1;
    let prevEnd = -1;
    let any = false;
    for (let i = 0; i <= n; i++) {
      const c = i < n ? wordCode(text.charCodeAt(i)) : -1;
      if (c >= 0) {
        if (start < 0) {
          start = i;
          h = FNV_OFFSET;
        }
        h = Math.imul(h ^ c, FNV_PRIME);
        continue;
      }
      if (start < 0) continue;
      any = true;
      const word = fmix(h ^ wordSeed);
      const wordSlot = base + (word % slots);
      const wordSign = word & 0x80000000 ? -1 : 1;
      dense[wordSlot]! += wordSign;
      if (named) named.push({ name: `${prefix}:${text.slice(start, i).toLowerCase()}`, slot: wordSlot, value: wordSign });
      if (prevStart >= 0) {
        const pair = fmix(Math.imul(prev ^ fmix(h), FNV_PRIME) ^ pairSeed);
        const pairSlot = base + (pair % slots);
        const pairSign = pair & 0x80000000 ? -1 : 1;
        dense[pairSlot]! += pairSign;
        if (named) {
          named.push({
            name: `${prefix}:${text.slice(prevStart, prevEnd).toLowerCase()} ${text.slice(start, i).toLowerCase()}`,
            slot: pairSlot,
            value: pairSign,
          });
        }
      }
      prev = h;
      prevStart = start;
      prevEnd = i;
      start = -1;
    }
    if (!any) return;
    let norm = 0;
    for (let s = base; s < base + slots; s++) norm += dense[s]! * dense[s]!;
    if (norm === 0) return;
    const scale = 1 / Math.sqrt(norm);
    for (let s = base; s < base + slots; s++) dense[s]! *= scale;
    if (named) for (let k = firstNamed; k < named.length; k++) named[k]!.value *= scale;
  }
}
