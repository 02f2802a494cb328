import { afterEach, describe, expect, it, vi } from 'vitest';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js';

/**
 * Conversations that stay on one model (router.sticky), through the real OpenAI SDK: three models
 * the policy spreads turns over (`adaptive`, seeded, no evidence yet), so without stickiness a
 * conversation's turns move, and with it they do not.
 */

const open: { gw?: TestGateway; upstream?: FakeUpstream }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.gw?.stop();
    await o.upstream?.close();
  }
});

function models(upstream: FakeUpstream) {
  const m = (model: string) => ({ baseURL: upstream.baseURL, model, timeoutMs: 2000 });
  return { a: m('a-model'), b: m('b-model'), c: m('c-model') };
}

async function start(
  router: Record<string, unknown> = {},
  over: { upstream?: FakeUpstream; dir?: string; clock?: () => number; config?: Record<string, unknown> } = {},
) {
  const upstream = over.upstream ?? (await startFakeUpstream());
  const gw = await startTestGateway(
    upstream,
    { models: models(upstream), router: { policy: 'adaptive', ...router }, ...over.config },
    { dir: over.dir, clock: over.clock },
  );
  open.push({ gw, upstream: over.upstream === undefined ? upstream : undefined });
  return { upstream, gw };
}

interface Turn {
  model: string;
  reason: string;
  content: string;
}

/** One turn through the SDK: the routing headers and the answer. */
async function turn(client: OpenAI, messages: ChatCompletionMessageParam[], headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Promise<Turn> {
  const { data, response } = await client.chat.completions.create({ model: 'auto', messages, ...extra }, { headers }).withResponse();
  return { model: response.headers.get('x-router-model')!, reason: response.headers.get('x-router-reason')!, content: data.choices[0]!.message.content! };
}

/** `n` turns of one conversation, its messages growing as a chat's do. */
async function conversation(client: OpenAI, n: number, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}, opening = 'Hello there'): Promise<Turn[]> {
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: opening }];
  const turns: Turn[] = [];
  for (let i = 0; i < n; i++) {
    const t = await turn(client, messages, headers, extra);
    turns.push(t);
    messages.push({ role: 'assistant', content: t.content }, { role: 'user', content: `question ${i + 2}` });
  }
  return turns;
}

const distinct = (turns: Turn[]) => new Set(turns.map((t) => t.model)).size;

describe('sticky sessions', () => {
  it('a twelve-turn conversation with x-session-id stays on one model; without a session its turns move', async () => {
    const { gw } = await start();
    const loose = await conversation(gw.client, 12);
    expect(distinct(loose)).toBeGreaterThan(1);
    expect(loose.every((t) => t.reason !== 'sticky')).toBe(true);

    const stuck = await conversation(gw.client, 12, { 'x-session-id': 'conversation-1' });
    expect(stuck[0]!.reason).not.toBe('sticky');
    expect(distinct(stuck)).toBe(1);
    expect(stuck.slice(1).map((t) => t.reason)).toEqual(new Array(11).fill('sticky'));

    // Other conversations are routed by the policy on their first turn, so they spread over the models.
    const firsts: string[] = [];
    for (let i = 0; i < 8; i++) {
      const other = await conversation(gw.client, 3, { 'x-session-id': `other-${i}` });
      expect(distinct(other)).toBe(1);
      firsts.push(other[0]!.model);
    }
    expect(new Set([stuck[0]!.model, ...firsts]).size).toBeGreaterThan(1);

    // The traces say why, and the policy observed every turn.
    const traces = await gw.gateway.store.recent(100);
    expect(traces.filter((t) => t.reason === 'sticky')).toHaveLength(11 + 8 * 2);
    // /stats: the share of routed answers that were sticky.
    const stats = (await (await request(`${gw.url}/stats`)).body.json()) as { sticky: Record<string, number> };
    expect(stats.sticky).toMatchObject({ routed_answers: 12 + 12 + 24, sticky_answers: 27, moved: 0, ttl_seconds: 3600, sessions: 9 });
    expect(stats.sticky.share).toBeCloseTo(27 / 48);
    // /metrics counts the attempts by reason.
    const metrics = await (await request(`${gw.url}/metrics`)).body.text();
    const sticky = metrics.split('\n').filter((l) => l.startsWith('tracegate_requests_total{') && l.includes('reason="sticky"'));
    expect(sticky.reduce((n, l) => n + Number(l.split(' ').pop()), 0)).toBe(27);
  });

  it('metadata.session_id names a conversation too, and reaches the upstream untouched', async () => {
    const { gw, upstream } = await start();
    const turns = await conversation(gw.client, 6, {}, { metadata: { session_id: 'from-metadata', user_tag: 'x' } });
    expect(distinct(turns)).toBe(1);
    expect(turns.slice(1).every((t) => t.reason === 'sticky')).toBe(true);
    expect(upstream.received.at(-1)!.body.metadata).toEqual({ session_id: 'from-metadata', user_tag: 'x' });
    // The header wins over the metadata.
    const other = await turn(gw.client, [{ role: 'user', content: 'hi' }], { 'x-session-id': 'another' }, { metadata: { session_id: 'from-metadata' } });
    expect(other.reason).not.toBe('sticky');
  });

  it('inferFromMessages: a conversation is known by its opening messages', async () => {
    const { gw } = await start({ sticky: { inferFromMessages: true } });
    const first = await conversation(gw.client, 12, {}, {}, 'Opening A');
    expect(distinct(first)).toBe(1);
    expect(first.slice(1).every((t) => t.reason === 'sticky')).toBe(true);
    // Another opening is another conversation: its first turn is the policy's.
    const second = await conversation(gw.client, 2, {}, {}, 'Opening B');
    expect(second[0]!.reason).not.toBe('sticky');
    expect(second[1]!.reason).toBe('sticky');
    // A request without a user message names no conversation.
    const system = await turn(gw.client, [{ role: 'system', content: 'You are terse.' }]);
    expect(system.reason).not.toBe('sticky');
  });

  it('a sticky model that fails moves its conversation to the model that answered, which it then stays on', async () => {
    const { gw, upstream } = await start({ circuitBreaker: { failures: 100, cooldownSeconds: 30 } });
    const headers = { 'x-session-id': 'breaks' };
    const before = await conversation(gw.client, 3, headers);
    const old = before[0]!.model;
    upstream.script(`${old}-model`, { kind: 'status', status: 500 });
    const moved = await turn(gw.client, [{ role: 'user', content: 'next' }], headers);
    expect(moved.model).not.toBe(old);
    expect(moved.reason).toBe('failover');
    const attempts = (await gw.gateway.store.recent(2)).reverse();
    expect(attempts.map((t) => [t.modelKey, t.reason, t.outcome])).toEqual([
      [old, 'sticky', 'error'],
      [moved.model, 'failover', 'success'],
    ]);
    // The old model is healthy again: the conversation stays where it moved.
    upstream.script(`${old}-model`, { kind: 'answer' });
    const after = await conversation(gw.client, 6, headers);
    expect(after.every((t) => t.model === moved.model && t.reason === 'sticky')).toBe(true);
    const stats = (await (await request(`${gw.url}/stats`)).body.json()) as { sticky: Record<string, number> };
    expect(stats.sticky.moved).toBe(1);
  });

  it('a sticky model in cooldown is not asked: the policy chooses and the conversation moves', async () => {
    const { gw, upstream } = await start({ circuitBreaker: { failures: 1, cooldownSeconds: 600 } });
    const headers = { 'x-session-id': 'cooldown' };
    const old = (await conversation(gw.client, 2, headers))[0]!.model;
    // A pinned request's upstream failure puts the model in cooldown.
    upstream.script(`${old}-model`, { kind: 'status', status: 500 });
    await expect(gw.client.chat.completions.create({ model: old, messages: [{ role: 'user', content: 'x' }] })).rejects.toThrow();
    expect(gw.gateway.health.isAvailable(old)).toBe(false);
    const asked = upstream.received.length;
    const moved = await turn(gw.client, [{ role: 'user', content: 'next' }], headers);
    expect(moved.model).not.toBe(old);
    expect(['sticky', 'failover']).not.toContain(moved.reason);
    expect(upstream.received.length).toBe(asked + 1);
    const after = await conversation(gw.client, 4, headers);
    expect(after.every((t) => t.model === moved.model && t.reason === 'sticky')).toBe(true);
  });

  it('expires ttlSeconds after the last turn; writes the store only when new, moved, or a quarter of the TTL on', async () => {
    let now = Date.now();
    const { gw } = await start({ sticky: { ttlSeconds: 100 } }, { clock: () => now });
    const writes = vi.spyOn(gw.gateway.store, 'setStickySession');
    const headers = { 'x-session-id': 'ttl' };
    const turns = await conversation(gw.client, 12, headers);
    expect(distinct(turns)).toBe(1);
    expect(writes).toHaveBeenCalledTimes(1);
    // Each turn moves the expiry on: 99 s after the last turn it still holds.
    now += 99_000;
    expect((await turn(gw.client, [{ role: 'user', content: 'a' }], headers)).reason).toBe('sticky');
    // A quarter of the TTL and more since the last write: the stored expiry is refreshed, once.
    expect(writes).toHaveBeenCalledTimes(2);
    expect(writes.mock.calls[1]![2]).toBe(now + 100_000);
    now += 1000;
    expect((await turn(gw.client, [{ role: 'user', content: 'b' }], headers)).reason).toBe('sticky');
    expect(writes).toHaveBeenCalledTimes(2);
    // 100 s after the last turn: expired, the policy chooses again.
    now += 100_000;
    expect((await turn(gw.client, [{ role: 'user', content: 'c' }], headers)).reason).not.toBe('sticky');
    expect(writes).toHaveBeenCalledTimes(3);
    // Expired rows leave the store.
    now += 200_000;
    expect(await gw.gateway.store.purgeStickySessions(now)).toEqual({ deleted: 1 });
  });

  it('a restart on the same SQLite file keeps the conversation on its model', async () => {
    const dir = tempDir();
    const upstream = await startFakeUpstream();
    open.push({ upstream });
    const headers = { 'x-session-id': 'survives' };
    const first = await start({}, { upstream, dir });
    const turns = await conversation(first.gw.client, 3, headers);
    const model = turns[0]!.model;
    await first.gw.stop();
    // Another seed: the restarted policy would route the next turn elsewhere of itself.
    for (const seed of [2, 3, 4]) {
      const again = await start({ seed }, { upstream, dir });
      const next = await turn(again.gw.client, [{ role: 'user', content: `after restart ${seed}` }], headers);
      expect(next).toMatchObject({ model, reason: 'sticky' });
      await again.gw.stop();
    }
  });

  it("another caller's session of the same id is its own conversation", async () => {
    const hash = (key: string) => sha256(key).toString('hex');
    const { gw } = await start({}, {
      config: { auth: { clientKeys: [{ name: 'alice', sha256: hash('alice-key') }, { name: 'bob', sha256: hash('bob-key') }] } },
    });
    const alice = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'alice-key', maxRetries: 0, defaultHeaders: { 'x-session-id': 'shared-id' } });
    const bob = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'bob-key', maxRetries: 0, defaultHeaders: { 'x-session-id': 'shared-id' } });
    const a = await conversation(alice, 4);
    expect(a.slice(1).every((t) => t.reason === 'sticky')).toBe(true);
    // Bob's first turn with that id is the policy's, not alice's model by reason sticky.
    const b = await conversation(bob, 8);
    expect(b[0]!.reason).not.toBe('sticky');
    expect(b.slice(1).every((t) => t.reason === 'sticky' && t.model === b[0]!.model)).toBe(true);
    // Alice is still where she was.
    expect(await turn(alice, [{ role: 'user', content: 'still?' }])).toMatchObject({ model: a[0]!.model, reason: 'sticky' });
  });

  it('refuses an absurd session id with a 400 naming it; pinned requests do not touch sessions', async () => {
    const { gw } = await start();
    const long = 'x'.repeat(257);
    const err = await gw.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-session-id': long } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ code: 'invalid_session_id', param: 'x-session-id' });
    const viaMetadata = await gw.client.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], metadata: { session_id: long.slice(1) + 'yy' } })
      .catch((e: unknown) => e);
    expect((viaMetadata as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ param: 'metadata.session_id' });
    // 256 characters are taken.
    expect((await turn(gw.client, [{ role: 'user', content: 'hi' }], { 'x-session-id': long.slice(1) })).reason).not.toBe('sticky');

    const writes = vi.spyOn(gw.gateway.store, 'setStickySession');
    const reads = vi.spyOn(gw.gateway.store, 'stickySession');
    const headers = { 'x-session-id': 'pinned' };
    for (const model of ['a', 'b', 'c']) {
      const { response } = await gw.client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }, { headers }).withResponse();
      expect(response.headers.get('x-router-reason')).toBe('pinned');
    }
    // An id too long for a session does not matter to a pinned request.
    await gw.client.chat.completions.create({ model: 'a', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-session-id': long } });
    expect(writes).not.toHaveBeenCalled();
    expect(reads).not.toHaveBeenCalled();
    expect((await turn(gw.client, [{ role: 'user', content: 'hi' }], headers)).reason).not.toBe('sticky');
  });

  it('router.sticky false: no sessions, no sticky share in /stats', async () => {
    const { gw } = await start({ sticky: false });
    const turns = await conversation(gw.client, 12, { 'x-session-id': 'off' });
    expect(distinct(turns)).toBeGreaterThan(1);
    expect(turns.every((t) => t.reason !== 'sticky')).toBe(true);
    const stats = (await (await request(`${gw.url}/stats`)).body.json()) as Record<string, unknown>;
    expect(stats.sticky).toBeUndefined();
  });
});
