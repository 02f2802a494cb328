import { describe, expect, it } from 'vitest';
import { Redactor, secretsOf } from '../../src/upstream/redact.js';

const secret = 'sk-upstream-0123456789';
const other = 'proxy-token-abcdefgh';

describe('Redactor', () => {
  it('replaces every configured secret in a body, and returns the same buffer when there is none', () => {
    const r = new Redactor([secret, other]);
    expect(r.scrub(Buffer.from(`a ${secret} b ${other} c ${secret}`)).toString()).toBe('a [redacted] b [redacted] c [redacted]');
    const clean = Buffer.from('nothing to hide');
    expect(r.scrub(clean)).toBe(clean);
    expect(r.scrubText(`key=${secret}`)).toBe('key=[redacted]');
  });

  it('skips secrets shorter than 8 characters, and the longer of two overlapping secrets wins', () => {
    const r = new Redactor(['short', `${secret}-extended`, secret]);
    expect(r.scrubText('a short word')).toBe('a short word');
    expect(r.scrubText(`${secret}-extended and ${secret}`)).toBe('[redacted] and [redacted]');
  });

  it('gathers the secrets of the config: API keys from apiKey or apiKeyEnv, and header values', () => {
    const base = { baseURL: 'http://x/v1', model: 'm', timeoutMs: 1, inputCostPerMTok: 0, outputCostPerMTok: 0, connections: 1, routed: true, maxResponseBytes: 1, streamUsage: true, endpoints: ['chat' as const] };
    const found = secretsOf(
      {
        a: { ...base, apiKey: secret, headers: {} },
        b: { ...base, apiKeyEnv: 'B_KEY', headers: { 'x-proxy-token': other } },
      },
      { B_KEY: 'sk-from-the-environment' },
    );
    expect(found.sort()).toEqual([secret, other, 'sk-from-the-environment'].sort());
  });

  it('in a stream, catches a secret split across chunks and holds back only what could be its start', () => {
    const r = new Redactor([secret]);
    const s = r.stream();
    const out: string[] = [];
    const text = `one ${secret} two ${secret}`;
    for (const cut of [[0, 9], [9, 20], [20, text.length]]) out.push(s.feed(Buffer.from(text.slice(cut[0], cut[1]))).toString());
    out.push(s.end().toString());
    expect(out.join('')).toBe('one [redacted] two [redacted]');
    // Bytes that cannot start a secret go out at once.
    expect(s.feed(Buffer.from('data: {"x":1}\n\n')).toString()).toBe('data: {"x":1}\n\n');
    expect(s.feed(Buffer.from('ends with sk-up')).toString()).toBe('ends with ');
    expect(s.feed(Buffer.from('ward bound')).toString()).toBe('sk-upward bound');
  });

  it('Redactor.none changes nothing', () => {
    const b = Buffer.from(secret);
    expect(Redactor.none.scrub(b)).toBe(b);
    expect(Redactor.none.stream().feed(b)).toBe(b);
  });
});
