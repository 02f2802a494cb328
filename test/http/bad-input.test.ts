import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { sha256 } from '../../src/access/keys.js';
import { startGateway, type RunningGateway } from '../../src/app/server.js';
import { ODD_ADMIN_QUERIES, ODD_TRACE_IDS, GOOD_ADMIN_QUERIES } from '../helpers/admin-queries.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { startTestGateway, testConfig, type TestGateway } from '../helpers/gateway.js';

let upstream: FakeUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gw = await startTestGateway(upstream, { server: { host: '127.0.0.1', port: 0, bodyLimitBytes: 4096 } });
});
afterAll(async () => {
  await gw.stop();
  await upstream.close();
});

async function send(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, {
    method: method as 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: JSON.parse(text) as { error: Record<string, unknown> } };
}

function expectOpenAIError(json: { error: Record<string, unknown> }) {
  expect(Object.keys(json)).toEqual(['error']);
  expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof json.error.message).toBe('string');
}

describe('bad input gets a clear 4xx in OpenAI shape and creates no trace', () => {
  const cases: Array<[string, string, string | undefined, number, string | null]> = [
    ['malformed JSON', '/v1/chat/completions', '{"model": "auto", "messages": [', 400, 'invalid_json'],
    ['empty body', '/v1/chat/completions', '', 400, 'invalid_json'],
    ['array body', '/v1/chat/completions', '[1,2]', 400, 'invalid_request'],
    ['string body', '/v1/chat/completions', '"hello"', 400, 'invalid_request'],
    ['null body', '/v1/chat/completions', 'null', 400, 'invalid_request'],
    ['missing messages', '/v1/chat/completions', '{"model":"auto"}', 400, 'invalid_request'],
    ['empty messages', '/v1/chat/completions', '{"model":"auto","messages":[]}', 400, 'invalid_request'],
    ['messages not an array', '/v1/chat/completions', '{"model":"auto","messages":"hi"}', 400, 'invalid_request'],
    ['message without role', '/v1/chat/completions', '{"model":"auto","messages":[{"content":"hi"}]}', 400, 'invalid_request'],
    ['message not an object', '/v1/chat/completions', '{"model":"auto","messages":[42]}', 400, 'invalid_request'],
    ['missing model', '/v1/chat/completions', '{"messages":[{"role":"user","content":"hi"}]}', 400, 'invalid_request'],
    ['model not a string', '/v1/chat/completions', '{"model":5,"messages":[{"role":"user","content":"hi"}]}', 400, 'invalid_request'],
    ['stream not a boolean', '/v1/chat/completions', '{"model":"auto","stream":"yes","messages":[{"role":"user","content":"hi"}]}', 400, 'invalid_request'],
    ['body over the limit', '/v1/chat/completions', JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }), 413, 'body_too_large'],
    ['unknown route', '/v1/audio/speech', '{}', 404, 'unknown_url'],
    ['embeddings: no model', '/v1/embeddings', '{"input":"x"}', 400, 'invalid_request'],
    ['a path that only starts like the embeddings route', '/v1/embeddingsx', '{}', 404, 'unknown_url'],
    ['a path that only starts like the chat route', '/v1/chat/completionsx', '{}', 404, 'unknown_url'],
    ['the chat route with a trailing slash', '/v1/chat/completions/', '{}', 404, 'unknown_url'],
    ['feedback: malformed JSON', '/feedback', '{"trace_id":', 400, 'invalid_json'],
  ];
  for (const [name, path, body, status, code] of cases) {
    it(name, async () => {
      const before = await gw.gateway.store.count();
      const res = await send('POST', path, body);
      expect(res.status).toBe(status);
      expectOpenAIError(res.json);
      expect(res.json.error.code).toBe(code);
      expect(await gw.gateway.store.count()).toBe(before);
    });
  }

  it('names the bad parameter', async () => {
    const res = await send('POST', '/v1/chat/completions', '{"model":"auto","messages":[{"content":"hi"}]}');
    expect(res.json.error.param).toBe('messages[0].role');
  });

  it('refuses a body over the limit even without content-length (chunked)', async () => {
    const big = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'y'.repeat(8000) }] });
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Readable.from((async function* () {
        yield Buffer.from(big.slice(0, 3000));
        yield Buffer.from(big.slice(3000));
      })()),
    });
    expect(res.statusCode).toBe(413);
    expectOpenAIError((await res.body.json()) as { error: Record<string, unknown> });
  });

  it('answers a wrong method with 405 in OpenAI shape', async () => {
    const res = await send('GET', '/v1/chat/completions');
    expect(res.status).toBe(405);
    expectOpenAIError(res.json);
  });

  it('serves the chat route with a query string (api-version and the like)', async () => {
    const res = await request(`${gw.url}/v1/chat/completions?api-version=2024-06-01`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'ok?' }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { choices: unknown[] }).choices).toHaveLength(1);
  });

  it('an unknown GET route is a 404 in OpenAI shape', async () => {
    const res = await send('GET', '/nowhere');
    expect(res.status).toBe(404);
    expectOpenAIError(res.json);
  });

  it('still serves after all that', async () => {
    const answer = await gw.client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'ok?' }] });
    expect(answer.choices[0]?.message.content).toBe('answer from small-model');
  });
});

describe('case variants of model', () => {
  it('does not pass a key that differs from model only in case upstream (Go decoders read it as model): 400 naming it', async () => {
    const before = upstream.received.length;
    const variants: Array<[string, string]> = [
      ['{"model":"auto","Model":"large","messages":[{"role":"user","content":"hi"}]}', 'Model'],
      ['{"MODEL":"large","model":"auto","messages":[{"role":"user","content":"hi"}]}', 'MODEL'],
      ['{"model":"auto","messages":[{"role":"user","content":"hi"}],"mOdEl":"large"}', 'mOdEl'],
      ['{"model":"auto","messages":[{"role":"user","content":"hi"}],"Mod\\u0065l":"large"}', 'Model'],
    ];
    for (const [body, key] of variants) {
      const res = await send('POST', '/v1/chat/completions', body);
      expect(res.status, body).toBe(400);
      expectOpenAIError(res.json);
      expect(res.json.error).toMatchObject({ type: 'invalid_request_error', param: key });
      expect(String(res.json.error.message)).toContain(`'${key}'`);
    }
    expect(upstream.received.length).toBe(before);
    // The same letters deeper down are the request's own business.
    const nested = await send('POST', '/v1/chat/completions', '{"model":"auto","metadata":{"Model":"x"},"messages":[{"role":"user","content":"hi","Model":"y"}]}');
    expect(nested.status).toBe(200);
  });
});

describe('admin query strings', () => {
  it('refuses odd values (fractions, huge numbers, NUL, 10 KB) with a 400 naming the parameter, before any store sees them', async () => {
    for (const [path, param] of ODD_ADMIN_QUERIES) {
      const res = await send('GET', path);
      expect(res.status, path.slice(0, 80)).toBe(400);
      expectOpenAIError(res.json);
      expect(res.json.error.param, path.slice(0, 80)).toBe(param);
      expect(String(res.json.error.message)).toMatch(/^Invalid '\w+': expected /);
    }
    for (const path of GOOD_ADMIN_QUERIES) expect((await send('GET', path)).status, path).toBe(200);
  });

  it('refuses a trace id with a NUL, a control character or 10 KB in it with a 400', async () => {
    for (const id of ODD_TRACE_IDS) {
      const res = await send('POST', '/feedback', JSON.stringify({ trace_id: id, thumbs: 'up' }));
      expect(res.status, JSON.stringify(id).slice(0, 40)).toBe(400);
      expect(res.json.error.param).toBe('trace_id');
    }
  });
});

describe('deeply nested bodies', () => {
  let big: TestGateway;
  beforeAll(async () => {
    big = await startTestGateway(upstream);
  });
  afterAll(() => big.stop());

  const post = async (body: string) => {
    const res = await request(`${big.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: res.statusCode, json: (await res.body.json()) as { error: Record<string, unknown> } };
  };
  const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

  it('answers a duplicate model with a deeply nested body with a 400, not a 500 (re-serialising it would overflow the stack)', async () => {
    const before = await big.gateway.store.count();
    const bodies = [
      `{"model":"small","messages":[{"role":"user","content":"hi"}],"x":${deep(50_000)},"model":"auto"}`,
      `{"model":"auto","messages":[{"role":"user","content":${deep(50_000)}}]}`,
      `{"model":"auto","messages":[{"role":"user","content":"hi"}],"x":${deep(129)}}`,
    ];
    for (const body of bodies) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expectOpenAIError(res.json);
      expect(res.json.error.code).toBe('body_too_deep');
    }
    expect(await big.gateway.store.count()).toBe(before);
    // server.bodyDepthLimit (128) levels are fine, strings that look like brackets do not count.
    const fine = `{"model":"auto","messages":[{"role":"user","content":"${'[{'.repeat(500)}\\"]"}],"x":${deep(127)}}`;
    expect((await post(fine)).status).toBe(200);
    const twice = `{"model":"small","messages":[{"role":"user","content":"hi"}],"x":${deep(100)},"model":"auto"}`;
    expect((await post(twice)).status).toBe(200);
  });
});

/** Writes a request's head, then body bytes every few ms until the server closes the connection (or 6 s pass). */
function streamAtGateway(port: number, head: string) {
  return new Promise<{ response: string; closedAfterMs: number; written: number }>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let response = '';
    let written = 0;
    socket.on('error', () => undefined); // the server hangs up mid-write
    socket.on('data', (d) => (response += d.toString()));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const chunked = /transfer-encoding: chunked/i.test(head);
    const pump = setInterval(() => {
      if (socket.destroyed || !socket.writable) return;
      socket.write(chunked ? `${chunk.length.toString(16)}\r\n${chunk}\r\n` : chunk);
      written += chunk.length;
    }, 5);
    const giveUp = setTimeout(() => socket.destroy(), 6000);
    socket.once('close', () => {
      clearInterval(pump);
      clearTimeout(giveUp);
      resolve({ response, closedAfterMs: Date.now() - started, written });
    });
    socket.write(head);
  });
}

describe('bodies that will be refused', () => {
  let keyed: TestGateway;
  beforeAll(async () => {
    keyed = await startTestGateway(upstream, {
      server: { host: '127.0.0.1', port: 0, bodyLimitBytes: 4096 },
      auth: { clientKeys: [{ name: 'k', sha256: sha256('tg-k').toString('hex') }] },
    });
  });
  afterAll(() => keyed.stop());

  const head = (path: string, extra: string) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}\r\n`;

  it('are not read to the end: the answer says connection: close and the connection closes while the client still sends', async () => {
    const cases: Array<[string, number, string]> = [
      [head('/v1/chat/completions', 'Authorization: Bearer tg-k\r\nTransfer-Encoding: chunked\r\n'), 413, 'chunked, past the limit'],
      [head('/v1/chat/completions', 'Authorization: Bearer tg-k\r\nContent-Length: 10000000000\r\n'), 413, 'declared too large'],
      [head('/v1/chat/completions', 'Content-Length: 10000000000\r\n'), 401, 'no key'],
      [head('/v1/chat/completions', 'Authorization: Bearer tg-wrong\r\nTransfer-Encoding: chunked\r\n'), 401, 'wrong key'],
      [head('/feedback', 'Content-Length: 10000000000\r\n'), 401, 'feedback, no key'],
      [head('/feedback', 'Authorization: Bearer tg-k\r\nTransfer-Encoding: chunked\r\n'), 413, 'feedback, past its limit'],
      [head('/nowhere', 'Content-Length: 10000000000\r\n'), 404, 'unknown route'],
    ];
    for (const [request, status, name] of cases) {
      const { response, closedAfterMs } = await streamAtGateway(keyed.port, request);
      expect(response.slice(0, 12), name).toBe(`HTTP/1.1 ${status}`);
      expect(response.toLowerCase(), name).toContain('connection: close');
      expect(closedAfterMs, name).toBeLessThan(3000);
    }
    expect(await keyed.gateway.store.count()).toBe(0);
  });
});

describe('clients that go away, and requests Node itself refuses', () => {
  let running: RunningGateway;
  let logs: Array<{ level: number; msg: string }> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    running = await startGateway(testConfig(upstream), { logger: pino({ level: 'debug' }, sink) });
  });
  afterAll(() => running.close());

  it('logs a client that aborts its upload as a debug line, not an unhandled error', async () => {
    for (const path of ['/v1/chat/completions', '/feedback']) {
      logs = [];
      const socket = connect(running.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((r) => socket.once('connect', () => r()));
      // Gone once the gateway has the request and waits for the rest of its body.
      running.server.once('request', () => setImmediate(() => socket.destroy()));
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`);
      await expect.poll(() => logs.some((l) => l.level === 20 && /request body was complete/.test(l.msg)), { timeout: 3000 }).toBe(true);
      expect(logs.filter((l) => l.level >= 40), path).toEqual([]);
    }
  });

  async function raw(text: string): Promise<string> {
    const socket = connect(running.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let response = '';
    socket.on('data', (d) => (response += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(text);
    await closed;
    return response;
  }

  function jsonError(response: string, status: number) {
    const [headers, body] = response.split('\r\n\r\n');
    expect(headers!.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(headers!.toLowerCase()).toContain('content-type: application/json');
    const json = JSON.parse(body!) as { error: Record<string, unknown> };
    expectOpenAIError(json);
    return json.error;
  }

  it("answers Node's own 400 and 431 (not HTTP, headers too large) in OpenAI's shape", async () => {
    expect(jsonError(await raw('NOT HTTP AT ALL\r\n\r\n'), 400).code).toBe('bad_http_request');
    expect(jsonError(await raw(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`), 431).code).toBe('headers_too_large');
    expect(jsonError(await raw('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n'), 400).code).toBe(
      'bad_http_request',
    );
  });
});
