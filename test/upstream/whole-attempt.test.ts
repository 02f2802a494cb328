import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AttemptAbort, ClientGone, sendWholeAttempt, UpstreamTimeout } from '../../src/upstream/attempt.js';
import { Upstream } from '../../src/upstream/upstream.js';

// A real upstream whose behaviour each test picks by path.
let server: Server;
let origin: string;
/** Requests the `silent` upstream has received (it never answers them). */
let silentRequests = 0;
const answer = JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } });

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/hints/v1/chat/completions') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload' });
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.end(answer);
      } else if (req.url === '/cut/v1/chat/completions') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write(answer.slice(0, 20));
        setTimeout(() => res.socket?.destroy(), 20);
      } else if (req.url === '/limited/v1/chat/completions') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' });
        res.end('{"error":{"message":"slow down","type":"rate_limit","param":null,"code":null}}');
      } else if (req.url === '/chunked/v1/chat/completions') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(answer.slice(0, 10));
        setTimeout(() => res.end(answer.slice(10)), 10);
      } else if (req.url === '/silent/v1/chat/completions') {
        silentRequests++; // and never answers
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function upstream(path: string, timeoutMs = 5000) {
  return new Upstream('m', {
    baseURL: `${origin}/${path}/v1`,
    model: 'up-model',
    timeoutMs,
    inputCostPerMTok: 0,
    outputCostPerMTok: 0,
    headers: {},
    connections: 4,
    routed: true,
    maxResponseBytes: 1024 * 1024,
    streamUsage: true, endpoints: ['chat'],
  });
}

describe('sendWholeAttempt', () => {
  it('skips an informational 103 and returns the final answer whole, with its headers', async () => {
    const up = upstream('hints');
    const sent = await sendWholeAttempt(up, '{}', new AttemptAbort());
    expect(sent.ok).toBe(true);
    if (!sent.ok) return;
    expect(sent.status).toBe(200);
    expect(sent.headers['x-upstream']).toBe('yes');
    expect(sent.payload.toString()).toBe(answer);
    await up.close();
  });

  it('joins an answer that arrives in several chunks', async () => {
    const up = upstream('chunked');
    const sent = await sendWholeAttempt(up, '{}', new AttemptAbort());
    expect(sent.ok && sent.payload.toString()).toBe(answer);
    await up.close();
  });

  it('gives a retryable status failure with the upstream body for a 429', async () => {
    const up = upstream('limited');
    const sent = await sendWholeAttempt(up, '{}', new AttemptAbort());
    expect(sent).toMatchObject({ ok: false, kind: 'status', status: 429, retryable: true });
    if (sent.ok) return;
    expect(sent.body?.toString()).toContain('slow down');
    expect(sent.headers?.['retry-after']).toBe('2');
    await up.close();
  });

  it('an answer cut short after its headers is a retryable failure, not a payload', async () => {
    const up = upstream('cut');
    const sent = await sendWholeAttempt(up, '{}', new AttemptAbort());
    expect(sent).toMatchObject({ ok: false, kind: 'unreachable', retryable: true });
    await up.close();
  });

  it('a signal aborted before the call cancels it; a later abort ends a call in flight', async () => {
    const up = upstream('silent');
    const early = new AttemptAbort();
    early.abort(new ClientGone('client disconnected'));
    expect(await sendWholeAttempt(up, '{}', early)).toMatchObject({ ok: false, kind: 'cancelled', retryable: false });

    const late = new AttemptAbort();
    const before = silentRequests;
    const pending = sendWholeAttempt(up, '{}', late);
    // In flight: the upstream has the request.
    await expect.poll(() => silentRequests).toBe(before + 1);
    late.abort(new UpstreamTimeout('upstream timeout'));
    expect(await pending).toMatchObject({ ok: false, kind: 'timeout', retryable: true });
    expect(late.listenerCount('abort')).toBe(0);
    await up.close();
  });
});
