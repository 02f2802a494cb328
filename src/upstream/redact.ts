import { resolveApiKey, type ModelConfig } from '../core/config.js';

/**
 * Secrets shorter than this are not searched for: a value that short (a header such as `1` or
 * `beta`) would also match ordinary text, and is no credential worth the name.
 */
export const MIN_SECRET_LENGTH = 8;
export const REDACTED = '[redacted]';
const REDACTED_BYTES = Buffer.from(REDACTED);
const EMPTY = Buffer.alloc(0);

/** Every secret of the models' config: each API key (from `apiKey` or `apiKeyEnv`) and every value of `headers`. */
export function secretsOf(models: Record<string, ModelConfig>, env: NodeJS.ProcessEnv = process.env): string[] {
  const found = new Set<string>();
  for (const model of Object.values(models)) {
    const key = resolveApiKey(model, env);
    if (key !== undefined) found.add(key);
    for (const value of Object.values(model.headers)) found.add(value);
  }
  return [...found];
}

/**
 * Replaces the configured secrets with `[redacted]` in what an upstream sends (bodies, header
 * values, streams), so an upstream that echoes its credentials does not hand them to a client.
 * Each search is a native `indexOf` per secret; without secrets every call returns its input.
 */
export class Redactor {
  static readonly none = new Redactor([]);

  /** Longest first: where two secrets match at one place, the longer is replaced. */
  private readonly secrets: Buffer[];
  private readonly texts: string[];

  constructor(secrets: Iterable<string>) {
    this.texts = [...new Set(secrets)].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => Buffer.byteLength(b) - Buffer.byteLength(a));
    this.secrets = this.texts.map((s) => Buffer.from(s));
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** `body` with every secret replaced; the same buffer when it holds none. */
  scrub(body: Buffer): Buffer {
    const secrets = this.secrets;
    for (let k = 0; k < secrets.length; k++) {
      if (body.indexOf(secrets[k]!) !== -1) return this.replace(body);
    }
    return body;
  }

  scrubText(text: string): string {
    const texts = this.texts;
    for (let k = 0; k < texts.length; k++) {
      if (text.includes(texts[k]!)) return this.scrub(Buffer.from(text)).toString('utf8');
    }
    return text;
  }

  /** A scrubber for one stream, which catches a secret split across its chunks. */
  stream(): StreamScrubber {
    return new StreamScrubber(this);
  }

  /** How many bytes at the end of `data` are the start of a secret (the longest such start; 0: none). */
  partialAtEnd(data: Buffer): number {
    const n = data.length;
    let longest = 0;
    for (const secret of this.secrets) {
      const first = secret[0]!;
      // Candidates start within the secret's length minus one of the end, earliest (longest) first.
      let i = data.indexOf(first, Math.max(0, n - secret.length + 1));
      while (i !== -1 && n - i > longest) {
        if (data.compare(secret, 0, n - i, i, n) === 0) {
          longest = n - i;
          break;
        }
        i = data.indexOf(first, i + 1);
      }
    }
    return longest;
  }

  private replace(body: Buffer): Buffer {
    const secrets = this.secrets;
    const next = secrets.map((s) => body.indexOf(s));
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      let which = -1;
      for (let k = 0; k < secrets.length; k++) {
        if (next[k]! !== -1 && next[k]! < at) next[k] = body.indexOf(secrets[k]!, at);
        if (next[k]! !== -1 && (which === -1 || next[k]! < next[which]!)) which = k;
      }
      if (which === -1) break;
      const found = next[which]!;
      parts.push(body.subarray(at, found), REDACTED_BYTES);
      at = found + secrets[which]!.length;
    }
    parts.push(body.subarray(at));
    return Buffer.concat(parts);
  }
}

/**
 * Scrubs a stream chunk by chunk. What could be the start of a secret at the end of a chunk is held
 * until the next one says (at most the longest secret's length minus one); nothing else is held, so
 * an event that ends a chunk goes out with it.
 */
export class StreamScrubber {
  private carry: Buffer | null = null;

  constructor(private readonly redactor: Redactor) {}

  feed(chunk: Buffer): Buffer {
    if (!this.redactor.active) return chunk;
    let data = chunk;
    if (this.carry !== null) {
      data = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    data = this.redactor.scrub(data);
    const keep = this.redactor.partialAtEnd(data);
    if (keep === 0) return data;
    this.carry = Buffer.from(data.subarray(data.length - keep));
    return data.subarray(0, data.length - keep);
  }

  /** The end of the stream: the start of a secret still held is not relayed. */
  end(): Buffer {
    const held = this.carry;
    this.carry = null;
    return held === null ? EMPTY : REDACTED_BYTES;
  }
}
