import { describe, expect, it } from 'vitest';
import { conversationFingerprint, RegenerationDetector } from '../../src/signals/regeneration.js';

const turn = (traceId: string, time: number) => ({ traceId, queryClass: 'general', model: 'a', time });

describe('conversationFingerprint', () => {
  const convo = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
  ];

  it('is the same for the same caller and the same messages, ending with the user turn', () => {
    expect(conversationFingerprint('team', [...convo])).toBe(conversationFingerprint('team', convo));
  });

  it('is undefined for a request that goes on past the user turn: a tool loop or a continuation is not a regenerate', () => {
    const toolStep = [
      ...convo,
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: '42' },
    ];
    expect(conversationFingerprint('team', toolStep)).toBeUndefined();
    expect(conversationFingerprint('team', [...convo, { role: 'assistant', content: 'a draft the client kept' }])).toBeUndefined();
  });

  it('differs by caller, by any message up to the last user turn, and by a new user turn', () => {
    const base = conversationFingerprint('team', convo);
    expect(conversationFingerprint('other', convo)).not.toBe(base);
    expect(conversationFingerprint(null, convo)).not.toBe(base);
    expect(conversationFingerprint('team', [{ role: 'system', content: 'be long' }, convo[1]])).not.toBe(base);
    expect(conversationFingerprint('team', [...convo, { role: 'assistant', content: 'x' }, { role: 'user', content: 'more' }])).not.toBe(base);
  });

  it('is undefined without a user message', () => {
    expect(conversationFingerprint('team', [{ role: 'system', content: 'x' }])).toBeUndefined();
    expect(conversationFingerprint('team', [])).toBeUndefined();
  });
});

describe('RegenerationDetector', () => {
  it('finds the earlier answer within the window, once', () => {
    const d = new RegenerationDetector(120_000);
    d.answer('f', turn('t1', 1_000));
    expect(d.regenerated('f', 60_000)?.traceId).toBe('t1');
    expect(d.regenerated('f', 61_000)).toBeUndefined();
  });

  it('ignores a resend after the window', () => {
    const d = new RegenerationDetector(120_000);
    d.answer('f', turn('t1', 1_000));
    expect(d.regenerated('f', 121_001)).toBeUndefined();
  });

  it('a third try marks the second answer', () => {
    const d = new RegenerationDetector(120_000);
    d.answer('f', turn('t1', 1_000));
    expect(d.regenerated('f', 2_000)?.traceId).toBe('t1');
    d.answer('f', turn('t2', 3_000));
    expect(d.regenerated('f', 4_000)?.traceId).toBe('t2');
  });

  it('knows nothing of another conversation', () => {
    const d = new RegenerationDetector(120_000);
    d.answer('f', turn('t1', 1_000));
    expect(d.regenerated('g', 2_000)).toBeUndefined();
  });
});
