import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { parseConfig } from '../../src/core/config.js';
import { browserCheck, hostnameOf, isJsonContentType } from '../../src/http/browser-guard.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * A keyless gateway on loopback against the requests a browser can be made to send: a page of
 * another site (cross-site POSTs, which need no preflight only as text/plain, form or multipart),
 * and a DNS-rebinding page (same origin as far as the browser knows, but its own name as Host).
 */

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream);
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

const CHAT = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'spend their money' }] });

async function send(path: string, headers: Record<string, string>, body?: string, method = body === undefined ? 'GET' : 'POST') {
  const res = await request(`${gw.url}${path}`, { method: method as 'POST', headers, body });
  const text = await res.body.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // the dashboard page
  }
  return { status: res.statusCode, json };
}

describe('a keyless gateway and the web pages of its machine', () => {
  it('does not take a cross-site text/plain POST (blind CSRF): 415 unsupported_media_type, nothing sent upstream', async () => {
    const before = upstream.received.length;
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await send('/v1/chat/completions', { 'content-type': type }, CHAT);
      expect(res.status, type).toBe(415);
      expect(res.json.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_media_type', param: null });
      const feedback = await send('/feedback', { 'content-type': type }, JSON.stringify({ trace_id: 'x', thumbs: 'up' }));
      expect(feedback.status, type).toBe(415);
    }
    expect((await send('/v1/chat/completions', {}, CHAT)).status).toBe(415);
    expect(upstream.received.length).toBe(before);
    expect(await gw.gateway.store.count()).toBe(0);
  });

  it('does not answer a DNS-rebinding page: a Host that is not a loopback name gets 403 host_not_allowed', async () => {
    for (const host of ['evil.example', 'evil.example:8080', `attacker.test:${gw.port}`, '127.0.0.1.evil.example', '']) {
      for (const path of ['/dashboard/data', '/stats', '/metrics', '/dashboard', '/v1/models']) {
        const res = await send(path, { host });
        expect(res.status, `${path} with Host ${host}`).toBe(403);
        expect(res.json.error.code).toBe('host_not_allowed');
      }
      const chat = await send('/v1/chat/completions', { host, 'content-type': 'application/json' }, CHAT);
      expect(chat.status).toBe(403);
      expect(chat.json.error.code).toBe('host_not_allowed');
    }
    expect(await gw.gateway.store.count()).toBe(0);
  });

  it('does not answer a page of another site: an Origin that is not this machine gets 403 origin_not_allowed', async () => {
    for (const origin of ['https://evil.example', 'http://evil.example:8080', 'null', 'file://', 'chrome-extension://abc']) {
      const chat = await send('/v1/chat/completions', { origin, 'content-type': 'application/json' }, CHAT);
      expect(chat.status, origin).toBe(403);
      expect(chat.json.error.code).toBe('origin_not_allowed');
      expect((await send('/dashboard/data', { origin })).status, origin).toBe(403);
    }
    expect(await gw.gateway.store.count()).toBe(0);
  });

  it('serves programs and its own pages: loopback Hosts with any port, JSON content types, loopback origins', async () => {
    for (const host of [`127.0.0.1:${gw.port}`, `localhost:${gw.port}`, 'localhost', '[::1]:1234', 'LOCALHOST:1']) {
      expect((await send('/stats', { host })).status, host).toBe(200);
    }
    const types = ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8', 'application/vnd.api+json'];
    for (const type of types) {
      expect((await send('/v1/chat/completions', { 'content-type': type }, CHAT)).status, type).toBe(200);
    }
    for (const origin of [gw.url, 'http://localhost:3000', 'https://127.0.0.1', 'http://[::1]:8080']) {
      const res = await send('/v1/chat/completions', { origin, 'content-type': 'application/json' }, CHAT);
      expect(res.status, origin).toBe(200);
    }
  });
});

describe('with client keys', () => {
  it('leaves Host, Origin and Content-Type alone: a page cannot send the key', async () => {
    const keyed = await startTestGateway(upstream, { auth: { clientKeys: [{ name: 'k', sha256: sha256('tg-k').toString('hex') }] } });
    try {
      const res = await request(`${keyed.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { host: 'gateway.internal:443', origin: 'https://app.example', 'content-type': 'text/plain', authorization: 'Bearer tg-k' },
        body: CHAT,
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    } finally {
      await keyed.stop();
    }
  });
});

describe('browserCheck', () => {
  const models = { a: { baseURL: 'http://127.0.0.1:1/v1', model: 'm' } };
  const check = (host: string) => browserCheck(parseConfig({ models, server: { host }, auth: { allowUnauthenticated: true } }), true)!;

  it('reads the host name of a Host header', () => {
    expect(hostnameOf('Example.COM:80')).toBe('example.com');
    expect(hostnameOf('[::1]:8080')).toBe('::1');
    expect(hostnameOf('[::1]')).toBe('::1');
    expect(hostnameOf('localhost.')).toBe('localhost');
  });

  it('knows JSON content types', () => {
    expect(isJsonContentType('application/json')).toBe(true);
    expect(isJsonContentType(' application/json ; charset=utf-8')).toBe(true);
    expect(isJsonContentType('application/merge-patch+json')).toBe(true);
    expect(isJsonContentType('text/plain')).toBe(false);
    expect(isJsonContentType('text/json')).toBe(false);
    expect(isJsonContentType('application/jsonx')).toBe(false);
    expect(isJsonContentType(undefined)).toBe(false);
  });

  it('serves the configured server.host besides loopback names', () => {
    const c = check('10.1.2.3');
    expect(() => c.request({ host: '10.1.2.3:8080' })).not.toThrow();
    expect(() => c.request({ host: '127.0.0.1' })).not.toThrow();
    expect(() => c.request({ host: '10.1.2.4:8080' })).toThrow(/not served/);
    expect(() => c.request({ host: '10.1.2.3', origin: 'http://10.1.2.3:8080' })).not.toThrow();
    expect(() => c.request({ host: '10.1.2.3', origin: 'http://evil.example' })).toThrow(/not allowed/);
  });

  it('bound to a wildcard address, answers any Host, and origins of that same host only', () => {
    const c = check('0.0.0.0');
    expect(() => c.request({ host: 'gateway.internal:8080' })).not.toThrow();
    expect(() => c.request({ host: 'gateway.internal:8080', origin: 'http://gateway.internal:8080' })).not.toThrow();
    expect(() => c.request({ host: 'gateway.internal:8080', origin: 'http://evil.example' })).toThrow(/not allowed/);
    expect(() => c.request({ host: 'gateway.internal:8080', origin: 'http://gateway.internal:9999' })).toThrow(/not allowed/);
  });

  it('is not there with client keys', () => {
    expect(browserCheck(parseConfig({ models }), false)).toBeNull();
  });
});
