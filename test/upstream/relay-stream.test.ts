import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttemptAbort, ClientGone, UpstreamBody } from '../../src/upstream/attempt.js';
import { Redactor } from '../../src/upstream/redact.js';
import { relayStream, type StreamOutcome } from '../../src/upstream/relay-stream.js';

/** What relayStream writes on: records every write; `full` makes writes ask for a drain. */
class FakeResponse extends EventEmitter {
  readonly writes: Buffer[] = [];
  full = false;
  ended = false;
  destroyed = false;

  write(chunk: Buffer | string): boolean {
    this.writes.push(Buffer.from(chunk));
    return !this.full;
  }

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.writes.push(Buffer.from(chunk));
    this.ended = true;
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this;
  }

  text(): string {
    return Buffer.concat(this.writes).toString('utf8');
  }
}

const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const delta = (content: string) => ev({ choices: [{ index: 0, delta: { content } }] });
const DONE = 'data: [DONE]\n\n';

/** Whether SSE text ends where an event ends (a blank line) or is empty: a plain reading of the spec's lines. */
function endsAtEventBoundary(text: string): boolean {
  const lines = text.split(/\r\n|\r|\n/);
  // The text ends with a line terminator (the last piece is empty) and the line before it is blank.
  return text === '' || (lines.length >= 2 && lines.at(-1) === '' && lines.at(-2) === '');
}

/**
 * Relays `chunks` (each its own read) through relayStream; the body aborts as undici would when the
 * signal fires. Returns what the client had been sent when `beforeEnd` ran (the trace's commit),
 * what it got in all, and the outcome.
 */
async function relay(chunks: (string | Buffer)[], options: { redactor?: Redactor; res?: FakeResponse; responses?: boolean } = {}) {
  const res = options.res ?? new FakeResponse();
  const body = new UpstreamBody();
  const signal = new AttemptAbort();
  signal.on('abort', (reason) => body.fail(reason instanceof Error ? reason : new Error(String(reason))));
  let atCommit: string | null = null;
  const relayed = relayStream(
    body,
    res as unknown as ServerResponse,
    signal,
    performance.now(),
    async () => {
      atCommit = res.text();
    },
    undefined,
    { redactor: options.redactor ?? Redactor.none, writeStallMs: 30_000, responses: options.responses },
  );
  for (const chunk of chunks) body.push(Buffer.from(chunk));
  body.finish();
  const outcome: StreamOutcome = await relayed;
  return { atCommit: atCommit as string | null, sent: res.text(), outcome, res };
}

describe('relayStream: the end of the stream', () => {
  it('holds back the final [DONE] event until the trace is committed, even when the marker is split across two reads', async () => {
    const events = delta('one') + delta(' two');
    for (const split of [3, 6, 9, 12, 13]) {
      const { atCommit, sent } = await relay([events + DONE.slice(0, split), DONE.slice(split)]);
      expect(atCommit).toBe(events);
      expect(sent).toBe(events + DONE);
    }
  });

  it('does not stop at model text that contains the end marker: the events after it go out before the end', async () => {
    const marker = delta('the stream ends with data: [DONE]\n\n, then closes');
    const after = delta(' and more text');
    const { atCommit, sent } = await relay([marker, after, ev({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } }), DONE]);
    expect(atCommit).toBe(marker + after + ev({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } }));
    expect(sent.endsWith(DONE)).toBe(true);
  });

  it('keeps backpressure once model text has carried the end marker', async () => {
    const res = new FakeResponse();
    const body = new UpstreamBody();
    const signal = new AttemptAbort();
    const relayed = relayStream(body, res as unknown as ServerResponse, signal, performance.now(), async () => {}, undefined, {
      redactor: Redactor.none,
      writeStallMs: 30_000,
    });
    let paused = 0;
    body.pause = () => void paused++;
    body.push(Buffer.from(delta('quoting data: [DONE] in text')));
    res.full = true;
    body.push(Buffer.from(delta('the client is slow now')));
    expect(paused).toBe(1);
    expect(res.text()).toContain('the client is slow now');
    res.full = false;
    res.emit('drain');
    body.push(Buffer.from(DONE));
    body.finish();
    await relayed;
    expect(res.text().endsWith(DONE)).toBe(true);
  });

  it('holds only an event whose whole data is [DONE]: other fields ride along, a second data line releases it', async () => {
    const lead = delta('x');
    // An event with an id and a comment besides its [DONE] data is still the end.
    expect((await relay([lead, 'id: 7\n: bye\ndata:[DONE]\r\n\r\n'])).atCommit).toBe(`${lead}id: 7\n: bye\n`);
    // Data of more than [DONE] is not the end: it goes out as it comes.
    const two = 'data: [DONE]\ndata: not the end\n\n';
    expect((await relay([lead, two])).atCommit).toBe(lead + two);
    const before = 'data: x\ndata: [DONE]\n\n';
    expect((await relay([lead, before])).atCommit).toBe(lead + before);
    // [DONE] in an event's data among other text, or as a field other than data, is not the end.
    for (const other of ['data: [DONE] \n\n', 'data:  [DONE]\n\n', 'event: [DONE]\n\n', 'data: {"a":"data: [DONE]"}\n\n']) {
      expect((await relay([lead, other])).atCommit).toBe(lead + other);
    }
    // An event after a [DONE] event releases it, in order.
    expect((await relay([lead, DONE, delta('late')])).atCommit).toBe(lead + DONE + delta('late'));
  });

  it('relays exactly the bytes the upstream sent, however they are cut, holding back only a final [DONE] event', () => {
    const line = fc.oneof(
      fc.constantFrom('data: [DONE]', 'data:[DONE]', 'data: [DONE] ', 'data', 'data:', ': comment', 'id: 1', 'event: message', 'retry: 10', 'dat', 'data: [DO'),
      fc.string({ maxLength: 12 }).map((s) => `data: ${JSON.stringify({ c: s })}`),
      fc.constantFrom('data: {"c":"data: [DONE]"}', 'data: "\\r\\n\\r\\n[DONE]"'),
    );
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    const event = fc.tuple(fc.array(fc.tuple(line, eol), { minLength: 1, maxLength: 3 }), eol).map(([lines, end]) => lines.map(([l, e]) => l + e).join('') + end);
    const stream = fc.tuple(fc.array(event, { maxLength: 6 }), fc.boolean(), fc.constantFrom('\n', '\r\n')).map(
      ([events, done, e]) => ({ text: events.join('') + (done ? `data: [DONE]${e}${e}` : ''), done, doneLength: `data: [DONE]${e}${e}`.length }),
    );
    return fc.assert(
      fc.asyncProperty(stream, fc.array(fc.nat(), { maxLength: 8 }), async ({ text, done, doneLength }, cuts) => {
        const bytes = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          if (p > at) chunks.push(bytes.subarray(at, p));
          at = p;
        }
        const { atCommit, sent } = await relay(chunks);
        expect(sent).toBe(text);
        // A final [DONE] event (one of its own: what came before it ended with a blank line) is never out before the commit.
        if (done && endsAtEventBoundary(text.slice(0, text.length - doneLength))) expect(atCommit!.length).toBeLessThanOrEqual(text.length - doneLength);
        expect(text.startsWith(atCommit!)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('relayStream: the end of a Responses API stream', () => {
  const rev = (type: string, o: Record<string, unknown>, eol = '\n') => `event: ${type}${eol}data: ${JSON.stringify({ type, ...o })}${eol}${eol}`;

  it('holds back the event that ends the response until the trace is committed, however the bytes are cut; reads its id', () => {
    const middle = fc.array(
      fc.oneof(
        fc.string({ maxLength: 300 }).map((d) => rev('response.output_text.delta', { delta: d })),
        fc.constant(': keep-alive\n\n'),
        fc.constant(rev('response.output_text.delta', { delta: 'quoting "type":"response.completed" and event: response.completed' })),
      ),
      { maxLength: 6 },
    );
    const ending = fc.constantFrom('response.completed', 'response.failed', 'response.incomplete');
    const eol = fc.constantFrom('\n', '\r\n');
    return fc.assert(
      fc.asyncProperty(middle, ending, eol, fc.array(fc.nat(), { maxLength: 8 }), async (events, end, e, cuts) => {
        const before = rev('response.created', { response: { id: 'resp_p', usage: null } }, e) + events.join('');
        const last = rev(end, { response: { id: 'resp_p', status: 'done', error: end === 'response.failed' ? { message: 'broke' } : null } }, e);
        const text = before + last;
        const bytes = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          if (p > at) chunks.push(bytes.subarray(at, p));
          at = p;
        }
        const { atCommit, sent, outcome } = await relay(chunks, { responses: true });
        expect(sent).toBe(text);
        // Every event before the end went out before the commit; the end did not.
        expect(atCommit).toBe(before);
        expect(outcome.response).toEqual({ id: 'resp_p', failure: end === 'response.failed' ? 'response failed: broke' : null });
      }),
      { numRuns: 200 },
    );
  });

  it('relays the events as they come: each read of whole events goes out with its read', async () => {
    const res = new FakeResponse();
    const body = new UpstreamBody();
    const relayed = relayStream(body, res as unknown as ServerResponse, new AttemptAbort(), performance.now(), async () => {}, undefined, {
      redactor: Redactor.none,
      writeStallMs: 30_000,
      responses: true,
    });
    const created = rev('response.created', { response: { id: 'resp_r' } });
    body.push(Buffer.from(created));
    expect(res.text()).toBe(created);
    const d = rev('response.output_text.delta', { delta: 'x'.repeat(1000) });
    body.push(Buffer.from(d.slice(0, 100)));
    // The start of an event not yet told waits for the next read.
    expect(res.text()).toBe(created);
    body.push(Buffer.from(d.slice(100, 600)));
    expect(res.text()).toBe(created + d.slice(0, 600));
    body.push(Buffer.from(d.slice(600)));
    expect(res.text()).toBe(created + d);
    body.finish();
    await relayed;
    expect(res.ended).toBe(true);
  });

  it('an event whose type shows only past its first 256 bytes is relayed as it comes; a chat stream is not held at response events', async () => {
    const late = `data: ${JSON.stringify({ sequence_number: 1, padding: 'p'.repeat(300), type: 'response.completed', response: { id: 'resp_l' } })}\n\n`;
    const { atCommit, sent, outcome } = await relay([late], { responses: true });
    expect(atCommit).toBe(late);
    expect(sent).toBe(late);
    expect(outcome.response?.id).toBe('resp_l');
    const chat = await relay([rev('response.completed', { response: { id: 'resp_c' } })]);
    expect(chat.atCommit).toBe(chat.sent);
    expect(chat.outcome.response).toBeUndefined();
  });
});

describe('relayStream: secrets', () => {
  const secret = 'sk-upstream-0123456789abcdef';
  const redactor = new Redactor([secret]);

  it('redacts a secret an upstream echoes, split across two reads', async () => {
    const event = delta(`your key is ${secret}, keep it`);
    const at = event.indexOf(secret) + 10;
    const { sent } = await relay([event.slice(0, at), event.slice(at), DONE], { redactor });
    expect(sent).not.toContain(secret);
    expect(sent).not.toContain(secret.slice(0, 12));
    expect(sent).toBe(delta('your key is [redacted], keep it') + DONE);
  });

  it('does not delay an event that merely ends with the start of a secret', async () => {
    const res = new FakeResponse();
    const body = new UpstreamBody();
    const relayed = relayStream(body, res as unknown as ServerResponse, new AttemptAbort(), performance.now(), async () => {}, undefined, {
      redactor,
      writeStallMs: 30_000,
    });
    body.push(Buffer.from(delta('sk-up')));
    expect(res.text()).toBe(delta('sk-up'));
    body.finish();
    await relayed;
  });
});

describe('relayStream: a client that stops reading', () => {
  it('is cut after writeStallMs without a drain, as cancelled with the reason', async () => {
    const res = new FakeResponse();
    const body = new UpstreamBody();
    const signal = new AttemptAbort();
    signal.on('abort', (reason) => body.fail(reason as Error));
    const relayed = relayStream(body, res as unknown as ServerResponse, signal, performance.now(), async () => {}, undefined, {
      redactor: Redactor.none,
      writeStallMs: 50,
    });
    res.full = true;
    body.push(Buffer.from(delta('never read')));
    const outcome = await relayed;
    expect(signal.reason).toBeInstanceOf(ClientGone);
    expect(outcome).toMatchObject({ outcome: 'cancelled', error: 'client stopped reading for 50 ms' });
    expect(res.destroyed).toBe(true);
  });
});

describe('relayStream: cost', () => {
  /** CPU milliseconds to relay `chunks`, the best of five runs. */
  async function cost(chunks: Buffer[]): Promise<number> {
    let best = Infinity;
    for (let run = 0; run < 5; run++) {
      const started = process.cpuUsage();
      await relay(chunks);
      const used = process.cpuUsage(started);
      best = Math.min(best, (used.user + used.system) / 1000);
    }
    return best;
  }

  it('relays SSE without event terminators at about the cost of the same bytes as events', async () => {
    const piece = JSON.stringify({ choices: [{ index: 0, delta: { content: 'some words of a longer answer' } }] });
    const count = 20_000;
    const events = Array.from({ length: count }, () => Buffer.from(`data: ${piece}\n\n`));
    // The same lines, never ended by a blank line: one endless event.
    const lines = Array.from({ length: count }, () => Buffer.from(`data: ${piece}\n`));
    await cost(events.slice(0, 1000));
    const normal = await cost(events);
    const unterminated = await cost(lines);
    expect(unterminated).toBeLessThan(Math.max(normal, 5) * 3);
  });
});
