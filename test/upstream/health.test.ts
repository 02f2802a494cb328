import { describe, expect, it } from 'vitest';
import { UpstreamHealth } from '../../src/upstream/health.js';

describe('UpstreamHealth (circuit breaker)', () => {
  it('opens after N consecutive failures, for the cooldown', () => {
    const h = new UpstreamHealth({ failures: 3, cooldownMs: 1000 });
    h.failure('a', 0);
    h.failure('a', 1);
    expect(h.isAvailable('a', 2)).toBe(true);
    h.failure('a', 2);
    expect(h.isAvailable('a', 3)).toBe(false);
    expect(h.cooldownLeft('a', 502)).toBe(500);
    expect(h.isAvailable('a', 1002)).toBe(true);
    expect(h.isAvailable('b', 3)).toBe(true);
  });

  it('a success in between resets the count', () => {
    const h = new UpstreamHealth({ failures: 2, cooldownMs: 1000 });
    h.failure('a', 0);
    h.success('a');
    h.failure('a', 1);
    expect(h.isAvailable('a', 2)).toBe(true);
  });

  it('a failed probe after the cooldown re-opens at once, with a doubled cooldown', () => {
    const h = new UpstreamHealth({ failures: 2, cooldownMs: 1000 });
    h.failure('a', 0);
    h.failure('a', 0);
    expect(h.cooldownLeft('a', 0)).toBe(1000);
    h.failure('a', 1000);
    expect(h.cooldownLeft('a', 1000)).toBe(2000);
    h.success('a');
    h.failure('a', 5000);
    expect(h.isAvailable('a', 5000)).toBe(true);
  });

  it('failures: 0 disables it', () => {
    const h = new UpstreamHealth({ failures: 0, cooldownMs: 1000 });
    for (let i = 0; i < 10; i++) h.failure('a', i);
    expect(h.isAvailable('a', 10)).toBe(true);
  });
});
