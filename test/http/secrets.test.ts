import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { parseConfig } from '../../src/core/config.js';
import { startGateway, type RunningGateway } from '../../src/app/server.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { tempDir } from '../helpers/gateway.js';

const SECRET = 'sk-upstream-SECRET-0123456789abcdef';
let upstream: FakeUpstream;
let running: RunningGateway;
let dir: string;
let logs = '';

beforeAll(async () => {
  upstream = await startFakeUpstream();
  dir = tempDir();
  const config = parseConfig({
    server: { port: 0 },
    database: { path: join(dir, 'traces.db') },
    models: {
      small: { baseURL: upstream.baseURL, model: 'small-model', apiKeyEnv: 'TEST_UPSTREAM_KEY', timeoutMs: 300 },
      large: { baseURL: upstream.baseURL, model: 'large-model', apiKey: SECRET, timeoutMs: 300 },
    },
    router: { policy: 'learned', defaultModel: 'small', fallbackModel: 'large' },
    traces: { storePrompts: 'full' },
  });
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs += chunk.toString();
      done();
    },
  });
  running = await startGateway(config, { logger: pino({ level: 'trace' }, sink), env: { TEST_UPSTREAM_KEY: SECRET } });
});
afterAll(async () => {
  await running.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('upstream API keys never leave the gateway', () => {
  it('is sent to the upstream, and appears in no response, log line or trace', async () => {
    const outputs: string[] = [];
    const call = async (path: string, body?: unknown, method = 'POST') => {
      const res = await request(`${running.url}${path}`, {
        method: method as 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      outputs.push(JSON.stringify(res.headers), await res.body.text());
    };
    const chat = { messages: [{ role: 'user', content: 'hi' }] };
    await call('/v1/chat/completions', { ...chat, model: 'auto' });
    await call('/v1/chat/completions', { ...chat, model: 'large', stream: true });
    upstream.script('small-model', { kind: 'status', status: 401, body: { error: { message: 'bad key', type: 'auth', param: null, code: null } } });
    await call('/v1/chat/completions', { ...chat, model: 'small' });
    upstream.script('small-model', { kind: 'hang' });
    await call('/v1/chat/completions', { ...chat, model: 'auto' });
    await call('/v1/chat/completions', { ...chat, model: 'small' });
    await call('/v1/chat/completions', '{bad');
    await call('/v1/models', undefined, 'GET');
    await call('/stats', undefined, 'GET');
    await call('/health', undefined, 'GET');

    expect(upstream.received.some((r) => r.headers.authorization === `Bearer ${SECRET}`)).toBe(true);
    for (const out of outputs) expect(out).not.toContain(SECRET);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(SECRET);
    await running.gateway.store.count();
    for (const trace of await running.gateway.store.list({})) expect(JSON.stringify(trace)).not.toContain(SECRET);
    for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(SECRET)).toBe(false);
  });
});
