import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { GatewayError } from '../../src/core/errors.js';
import { conversationOpening, StickySessions, type StickyOptions } from '../../src/pipeline/sticky-sessions.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import type { TraceStore } from '../../src/traces/types.js';

const logger = pino({ level: 'silent' });
const options: StickyOptions = { ttlSeconds: 100, inferFromMessages: true, maxSessions: 2, recheckMs: Infinity };
const clue = (header: unknown, metadata: unknown = undefined, items: unknown[] = []) => ({ header, metadata, items });

function sessions(store: TraceStore, clock: () => number, over: Partial<StickyOptions> = {}) {
  const s = new StickySessions({ store, logger }, { ...options, ...over }, clock);
  s.close();
  return s;
}

describe('session keys', () => {
  const s = sessions(new SqliteTraceStore({ path: ':memory:' }), Date.now);

  it('hash the caller with the id: the header first, then metadata.session_id; another caller, another key', () => {
    const k = s.sessionKey('alice', clue('abc'));
    expect(k).toMatch(/^[\w-]{32}$/);
    expect(k).not.toContain('abc');
    expect(s.sessionKey('alice', clue(undefined, { session_id: 'abc' }))).toBe(k);
    expect(s.sessionKey('alice', clue('abc', { session_id: 'other' }))).toBe(k);
    expect(s.sessionKey('bob', clue('abc'))).not.toBe(k);
    expect(s.sessionKey(null, clue('abc'))).not.toBe(k);
    expect(s.sessionKey('alice', clue(''))).toBeNull();
    expect(s.sessionKey('alice', clue(undefined, { session_id: 7 }))).toBeNull();
  });

  it('infer from the opening messages, the same on every turn; not when off', () => {
    const opening = [{ role: 'system', content: 's' }, { role: 'user', content: 'q1' }];
    const later = [...opening, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'q2' }];
    expect(conversationOpening(later)).toEqual(opening);
    expect(conversationOpening([{ role: 'system', content: 's' }])).toBeNull();
    const k = s.sessionKey('alice', clue(undefined, undefined, opening));
    expect(k).not.toBeNull();
    expect(s.sessionKey('alice', clue(undefined, undefined, later))).toBe(k);
    expect(s.sessionKey('alice', clue('abc', undefined, later))).not.toBe(k);
    const off = sessions(new SqliteTraceStore({ path: ':memory:' }), Date.now, { inferFromMessages: false });
    expect(off.sessionKey('alice', clue(undefined, undefined, later))).toBeNull();
  });

  it('refuse an id over 256 characters, naming where it came from', () => {
    expect(s.sessionKey(null, clue('x'.repeat(256)))).not.toBeNull();
    expect(() => s.sessionKey(null, clue('x'.repeat(257)))).toThrow(GatewayError);
    const err = (() => {
      try {
        s.sessionKey(null, clue(undefined, { session_id: 'y'.repeat(300) }));
      } catch (e) {
        return e as GatewayError;
      }
    })();
    expect(err).toMatchObject({ status: 400, code: 'invalid_session_id', param: 'metadata.session_id' });
  });
});

describe('the session map', () => {
  it('keeps the most recently used sessions in memory and reads the others from the store', async () => {
    const store = new SqliteTraceStore({ path: ':memory:' });
    let now = 1_000_000;
    const s = sessions(store, () => now);
    s.answered('k1', 'a', 'learned');
    s.answered('k2', 'b', 'learned');
    s.answered('k3', 'c', 'learned');
    expect(s.snapshot().sessions).toBe(2);
    // The writes ride the traces' next commit (count() waits for it).
    await store.count();
    // k1 left memory: a read of the store (a promise), then memory again.
    const read = s.modelOf('k1');
    expect(read).toBeInstanceOf(Promise);
    expect(await read).toBe('a');
    expect(s.modelOf('k1')).toBe('a');
    // k2 was the least recently used when k1 came back.
    expect(s.modelOf('k3')).toBe('c');
    expect(s.modelOf('k2')).toBeInstanceOf(Promise);
    now += 100_000;
    expect(await s.modelOf('k1')).toBeNull();
    await store.close();
  });

  it('a store that fails or does not answer: the session is new (memory still answers); a failed write is made again', async () => {
    let now = 1_000_000;
    let writes = 0;
    let failWrites = true;
    const broken = {
      stickySession: () => new Promise<never>(() => {}),
      setStickySession: async () => {
        writes++;
        if (failWrites) throw new Error('down');
      },
      purgeStickySessions: async () => ({ deleted: 0 }),
    } as unknown as TraceStore;
    const s = sessions(broken, () => now);
    expect(await s.modelOf('k1')).toBeNull();
    s.answered('k1', 'a', 'learned');
    expect(s.modelOf('k1')).toBe('a');
    await expect.poll(() => writes).toBe(1);
    failWrites = false;
    // The next turn writes it again (the first write failed), and then not on every turn.
    await new Promise((r) => setImmediate(r));
    s.answered('k1', 'a', 'sticky');
    s.answered('k1', 'a', 'sticky');
    expect(writes).toBe(2);
    now += 30_000;
    s.answered('k1', 'a', 'sticky');
    expect(writes).toBe(3);
    expect(s.snapshot()).toMatchObject({ routed_answers: 4, sticky_answers: 3, share: 0.75, moved: 0 });
    s.answered('k1', 'b', 'failover');
    expect(s.snapshot().moved).toBe(1);
  });
});
