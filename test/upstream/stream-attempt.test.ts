import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AttemptAbort, ClientGone, sendStreamAttempt, UpstreamBody, type BodySink } from '../../src/upstream/attempt.js';
import { Upstream } from '../../src/upstream/upstream.js';

// A real upstream whose behaviour each test picks by path.
let server: Server;
let origin: string;
const event = (i: number) => `data: {"n":${i}}\n\n`;
/** Events the `slow` upstream has written so far (its responses together). */
let slowWrites = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/events/v1/chat/completions') {
        // Headers and the first events in one write, then the rest later.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accept': String(req.headers.accept) });
        res.write(event(0) + event(1));
        setTimeout(() => res.write(event(2)), 20);
        setTimeout(() => res.end(event(3)), 40);
      } else if (req.url === '/limited/v1/chat/completions') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' });
        res.write('{"error":{"message":"slow ');
        setTimeout(() => res.end('down","type":"rate_limit","param":null,"code":null}}'), 10);
      } else if (req.url === '/slow/v1/chat/completions') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(event(0));
        const timer = setInterval(() => {
          slowWrites++;
          res.write(event(1));
        }, 20);
        res.on('close', () => clearInterval(timer));
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

function upstream(path: string) {
  return new Upstream('m', { baseURL: `${origin}/${path}/v1`, model: 'up-model', timeoutMs: 5000, inputCostPerMTok: 0, outputCostPerMTok: 0, headers: {}, connections: 4, routed: true, maxResponseBytes: 1024 * 1024, streamUsage: true, endpoints: ['chat'] });
}

/** Takes a body and collects what its sink is handed. */
function collect(body: UpstreamBody): Promise<{ text: string; error: Error | null }> {
  return new Promise((resolve) => {
    let text = '';
    const sink: BodySink = {
      data: (chunk) => {
        text += chunk.toString('utf8');
        return true;
      },
      end: () => resolve({ text, error: null }),
      error: (error) => resolve({ text, error }),
    };
    body.take(sink);
  });
}

describe('sendStreamAttempt', () => {
  it('resolves at the headers; hands on the chunks that came before the body was taken, then the rest, in order', async () => {
    const push = vi.spyOn(UpstreamBody.prototype, 'push');
    const sent = await sendStreamAttempt(upstream('events'), '{}', new AttemptAbort());
    if (!sent.ok) throw new Error(sent.message);
    expect(sent.status).toBe(200);
    expect(sent.headers['x-accept']).toBe('text/event-stream');
    // Events 0–2 arrive with nobody taking them: wait until event 2 has been handed to the body.
    const early = () => push.mock.calls.filter((_, i) => push.mock.contexts[i] === sent.body).map(([chunk]) => chunk.toString('utf8')).join('');
    await expect.poll(early).toContain(event(2));
    push.mockRestore();
    expect(await collect(sent.body)).toEqual({ text: [0, 1, 2, 3].map(event).join(''), error: null });
    expect(() => sent.body.take({ data: () => true, end: () => {}, error: () => {} })).toThrow(/already taken/);
  });

  it('reads a whole body with readAll', async () => {
    const sent = await sendStreamAttempt(upstream('events'), '{}', new AttemptAbort());
    if (!sent.ok) throw new Error(sent.message);
    expect((await sent.body.readAll()).toString()).toBe([0, 1, 2, 3].map(event).join(''));
  });

  it('gives an error status as a retryable failure with its whole body and headers', async () => {
    const sent = await sendStreamAttempt(upstream('limited'), '{}', new AttemptAbort());
    expect(sent).toMatchObject({ ok: false, kind: 'status', status: 429, retryable: true, headers: { 'retry-after': '2' } });
    if (sent.ok) return;
    expect(JSON.parse(sent.body!.toString())).toMatchObject({ error: { message: 'slow down' } });
  });

  it('ends the body with an error when the attempt is aborted after its headers (a client that left)', async () => {
    const ac = new AttemptAbort();
    const sent = await sendStreamAttempt(upstream('slow'), '{}', ac);
    if (!sent.ok) throw new Error(sent.message);
    // The client leaves once the second event has reached the sink.
    const { text, error } = await new Promise<{ text: string; error: Error | null }>((resolve) => {
      let text = '';
      sent.body.take({
        data: (chunk) => {
          text += chunk.toString('utf8');
          if (text.startsWith(event(0) + event(1))) ac.abort(new ClientGone('client disconnected'));
          return true;
        },
        end: () => resolve({ text, error: null }),
        error: (error) => resolve({ text, error }),
      });
    });
    expect(error).toBeInstanceOf(ClientGone);
    expect(text.startsWith(event(0) + event(1))).toBe(true);
  });

  it('pauses the upstream while the sink asks it to, and resumes', async () => {
    const sent = await sendStreamAttempt(upstream('slow'), '{}', new AttemptAbort());
    if (!sent.ok) throw new Error(sent.message);
    const body = sent.body;
    let chunks = 0;
    // Room for three chunks, then a pause.
    body.take({ data: () => ++chunks < 3, end: () => {}, error: () => {} });
    await expect.poll(() => chunks).toBeGreaterThanOrEqual(3);
    // What the upstream writes from now on (a chunk every 20 ms) waits in the sockets: ten more.
    const written = slowWrites;
    await expect.poll(() => slowWrites, { timeout: 5000 }).toBeGreaterThanOrEqual(written + 10);
    expect(chunks).toBeLessThanOrEqual(4);
    const paused = chunks;
    body.resume();
    await expect.poll(() => chunks).toBeGreaterThan(paused);
    body.controller?.abort(new Error('done'));
  });
});
