import { describe, expect, it } from 'vitest';
import type { AttemptFailure } from '../../src/upstream/attempt.js';
import { parseResetDuration, parseRetryAfter, rateLimitWaitMs, statusCause } from '../../src/upstream/failure-kind.js';

const failure = (status: number, body?: unknown): AttemptFailure => ({
  ok: false,
  kind: 'status',
  message: `upstream answered ${status}`,
  status,
  retryable: status === 429 || status >= 500,
  body: body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
});

describe('statusCause', () => {
  it('names refused keys, rate limits and requests too big for the model', () => {
    expect(statusCause(failure(401))).toBe('auth');
    expect(statusCause(failure(403))).toBe('auth');
    expect(statusCause(failure(429))).toBe('rate');
    expect(statusCause(failure(413))).toBe('too-big');
    expect(statusCause(failure(400, { error: { message: 'too long', code: 'context_length_exceeded' } }))).toBe('too-big');
    expect(statusCause(failure(400, { error: { message: "This model's maximum context length is 8192 tokens", code: null } }))).toBe('too-big');
    expect(statusCause(failure(400, { error: { message: 'input exceeds the context window', code: null } }))).toBe('too-big');
  });

  it('leaves everything else alone', () => {
    expect(statusCause(failure(400, { error: { message: 'bad temperature', code: null } }))).toBe('other');
    expect(statusCause(failure(400, 'maximum context length, but not JSON'))).toBe('other');
    expect(statusCause(failure(500))).toBe('other');
    expect(statusCause({ ok: false, kind: 'timeout', message: 'x', status: null, retryable: true })).toBe('other');
  });
});

describe('rate-limit waits', () => {
  it("reads OpenAI's reset durations", () => {
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('20ms')).toBe(20);
    expect(parseResetDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseResetDuration('soon')).toBeNull();
    expect(parseResetDuration('')).toBeNull();
  });

  it('reads retry-after in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('later', now)).toBeNull();
  });

  it('takes retry-after-ms, then retry-after, then the longer reset', () => {
    expect(rateLimitWaitMs({ 'retry-after-ms': '150', 'retry-after': '9' })).toBe(150);
    expect(rateLimitWaitMs({ 'retry-after': '1', 'x-ratelimit-reset-requests': '6m0s' })).toBe(1000);
    expect(rateLimitWaitMs({ 'x-ratelimit-reset-requests': '20ms', 'x-ratelimit-reset-tokens': '1s' })).toBe(1000);
    expect(rateLimitWaitMs({})).toBeNull();
    expect(rateLimitWaitMs(undefined)).toBeNull();
  });
});
