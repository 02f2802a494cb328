import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenAI-shaped HTTP upstream on port 0, scripted per upstream model name. A POST to a path
 * ending in `/embeddings` is answered as OpenAI's embeddings endpoint: an `answer` there is a list
 * of `fakeVector`s, one per input, `dimensions` long (default 4), base64 when `encoding_format` asks.
 * A POST to a path ending in `/responses` is answered as OpenAI's Responses API: a response object
 * (`resp_…`, usage in input/output tokens) whole, or streamed as its events (`response.created` …
 * `response.completed`, which carries the usage); a `previous_response_id` this upstream did not
 * make for the same model is a 404 `previous_response_not_found`, in OpenAI's error shape.
 */

export type Behaviour =
  /** `wait`: the answer is held until it settles (a test's gate). `content` is ignored on `/embeddings`. */
  | { kind: 'answer'; content?: string; delayMs?: number; extra?: Record<string, unknown>; wait?: Promise<unknown> }
  /** `failed`: on `/responses`, the stream ends with `response.failed` (this message) instead of `response.completed`. */
  | { kind: 'stream'; parts?: string[]; delayMs?: number; failAfter?: number; failed?: string }
  | { kind: 'status'; status: number; body?: string | Record<string, unknown>; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'malformed' }
  | { kind: 'destroy' }
  /**
   * Exactly these bytes, each chunk its own write, `gapMs` apart (so each arrives in a read of its
   * own); `wait` holds the chunks from `waitBefore` on until it settles. `endless` keeps writing the
   * last chunk, as fast as the socket takes it, until the connection closes.
   */
  | {
      kind: 'raw';
      status?: number;
      headers?: Record<string, string>;
      chunks: (string | Buffer)[];
      gapMs?: number;
      wait?: Promise<unknown>;
      waitBefore?: number;
      endless?: boolean;
    }
  /** A body of `bytes` bytes (a JSON object's opening, then filler), written as the socket takes it. */
  | { kind: 'big'; bytes: number; status?: number; contentType?: string };

export interface ReceivedRequest {
  model: string;
  body: Record<string, unknown>;
  raw: string;
  headers: IncomingHttpHeaders;
  path: string;
}

export type Script = (req: ReceivedRequest, n: number) => Behaviour;

export interface FakeUpstream {
  url: string;
  /** Bytes of response bodies written so far (`raw` and `big` answers). */
  readonly written: number;
  baseURL: string;
  received: ReceivedRequest[];
  /** Requests whose connection the client closed before the answer ended. */
  aborted: number;
  script(model: string, script: Script | Behaviour): void;
  close(): Promise<void>;
}

function completion(model: string, content: string, req: ReceivedRequest, extra: Record<string, unknown> = {}) {
  const promptTokens = Math.max(1, Math.ceil(req.raw.length / 4));
  const completionTokens = Math.max(1, Math.ceil(content.length / 4));
  return {
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    ...extra,
  };
}

/** The vector the fake upstream embeds input number `index` as: exact in float32, so base64 decodes to the same numbers. */
export function fakeVector(index: number, dimensions = 4): number[] {
  return Array.from({ length: dimensions }, (_, k) => (index + 1) * 0.5 + (k % 2 === 0 ? k : -k) * 0.125);
}

/** The inputs of an embeddings request, one per vector: a string, strings, token ids (one input) or arrays of them. */
function embeddingInputs(input: unknown): unknown[] {
  if (!Array.isArray(input)) return [input];
  return input.length > 0 && input.every((x) => typeof x === 'number') ? [input] : input;
}

/** Tokens the fake counts for an input: a string's characters / 4 (at least 1), a token array's length. */
function inputTokens(input: unknown): number {
  return Array.isArray(input) ? input.length : Math.max(1, Math.ceil(String(input).length / 4));
}

function embeddingList(model: string, req: ReceivedRequest, extra: Record<string, unknown> = {}) {
  const inputs = embeddingInputs(req.body.input);
  const dimensions = typeof req.body.dimensions === 'number' ? req.body.dimensions : 4;
  const base64 = req.body.encoding_format === 'base64';
  const promptTokens = inputs.reduce<number>((sum, input) => sum + inputTokens(input), 0);
  return {
    object: 'list',
    data: inputs.map((_, index) => {
      const vector = fakeVector(index, dimensions);
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
      };
    }),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const randomId = (prefix: string) => `${prefix}_${Math.random().toString(16).slice(2)}${Math.random().toString(16).slice(2)}`;

/** A Responses API response object as OpenAI shapes it: what the request asked for echoed back, usage last but for user and metadata. */
function responseObject(id: string, model: string, req: ReceivedRequest, text: string | null, status: string, extra: Record<string, unknown> = {}) {
  const b = req.body;
  const inputTokens = Math.max(1, Math.ceil(req.raw.length / 4));
  const outputTokens = text === null ? 0 : Math.max(1, Math.ceil(text.length / 4));
  return {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status,
    error: null,
    incomplete_details: null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model,
    output:
      text === null
        ? []
        : [{ type: 'message', id: `msg_${id.slice(5)}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }],
    parallel_tool_calls: true,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: b.reasoning ?? { effort: null, summary: null },
    store: b.store ?? true,
    temperature: 1,
    text: b.text ?? { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: b.tools ?? [],
    top_p: 1,
    truncation: 'disabled',
    usage:
      status === 'in_progress'
        ? null
        : {
            input_tokens: inputTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: outputTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: inputTokens + outputTokens,
          },
    user: null,
    metadata: b.metadata ?? {},
    ...extra,
  };
}

/** A Responses API stream: `response.created` … one `response.output_text.delta` per part … `response.completed` (or `response.failed`). */
async function writeResponseStream(res: ServerResponse, req: ReceivedRequest, id: string, b: Extract<Behaviour, { kind: 'stream' }>) {
  const parts = b.parts ?? ['Hello', ' from ', req.model];
  const text = parts.join('');
  const msg = `msg_${id.slice(5)}`;
  let seq = 0;
  const event = (type: string, data: Record<string, unknown>) => `event: ${type}
data: ${JSON.stringify({ type, sequence_number: seq++, ...data })}

`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'upstream-req-1' });
  res.write(event('response.created', { response: responseObject(id, req.model, req, null, 'in_progress') }));
  res.write(event('response.in_progress', { response: responseObject(id, req.model, req, null, 'in_progress') }));
  res.write(event('response.output_item.added', { output_index: 0, item: { id: msg, type: 'message', status: 'in_progress', content: [], role: 'assistant' } }));
  res.write(event('response.content_part.added', { item_id: msg, output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text: '' } }));
  for (let i = 0; i < parts.length; i++) {
    if (b.failAfter !== undefined && i === b.failAfter) {
      res.destroy();
      return;
    }
    if (b.delayMs) await sleep(b.delayMs);
    if (res.destroyed) return;
    res.write(event('response.output_text.delta', { item_id: msg, output_index: 0, content_index: 0, delta: parts[i], logprobs: [] }));
  }
  res.write(event('response.output_text.done', { item_id: msg, output_index: 0, content_index: 0, text, logprobs: [] }));
  res.write(event('response.content_part.done', { item_id: msg, output_index: 0, content_index: 0, part: { type: 'output_text', annotations: [], text } }));
  res.write(event('response.output_item.done', { output_index: 0, item: { id: msg, type: 'message', status: 'completed', content: [{ type: 'output_text', annotations: [], text }], role: 'assistant' } }));
  if (b.failed !== undefined) {
    const failed = { ...responseObject(id, req.model, req, text, 'failed'), error: { code: 'server_error', message: b.failed } };
    res.end(event('response.failed', { response: failed }));
    return;
  }
  res.end(event('response.completed', { response: responseObject(id, req.model, req, text, 'completed') }));
}

/** Writes `chunk`, waiting for the socket to take it; false once the connection is gone. */
function writeAll(res: ServerResponse, chunk: string | Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

async function writeStream(res: ServerResponse, req: ReceivedRequest, b: Extract<Behaviour, { kind: 'stream' }>) {
  const id = `chatcmpl-${Math.random().toString(36).slice(2)}`;
  const parts = b.parts ?? ['Hello', ' from ', req.model];
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'upstream-req-1' });
  const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: unknown) =>
    `data: ${JSON.stringify({
      id,
      object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      choices: usage ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(usage ? { usage } : {}),
    })}\n\n`;
  res.write(chunk({ role: 'assistant', content: '' }, null));
  for (let i = 0; i < parts.length; i++) {
    if (b.failAfter !== undefined && i === b.failAfter) {
      res.destroy();
      return;
    }
    if (b.delayMs) await sleep(b.delayMs);
    if (res.destroyed) return;
    res.write(chunk({ content: parts[i] }, null));
  }
  res.write(chunk({}, 'stop'));
  const opts = req.body.stream_options as { include_usage?: boolean } | undefined;
  if (opts?.include_usage) {
    const completionTokens = parts.join('').length;
    res.write(chunk({}, null, { prompt_tokens: 11, completion_tokens: completionTokens, total_tokens: 11 + completionTokens }));
  }
  res.end('data: [DONE]\n\n');
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  const scripts = new Map<string, Script>();
  const counts = new Map<string, number>();
  const received: ReceivedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  /** The responses made (`resp_…`), and for which model: a `previous_response_id` must name one made for the same model. */
  const responsesMade = new Map<string, string>();
  const state = { aborted: 0, written: 0 };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'GET' && req.url?.endsWith('/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [] }));
        return;
      }
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'bad json', type: 'invalid_request_error', param: null, code: null } }));
        return;
      }
      const model = String(body.model);
      const r: ReceivedRequest = { model, body, raw, headers: req.headers, path: req.url ?? '' };
      received.push(r);
      const n = (counts.get(model) ?? 0) + 1;
      counts.set(model, n);
      res.on('close', () => {
        if (!res.writableFinished) state.aborted++;
      });
      const script = scripts.get(model);
      const behaviour: Behaviour = script ? script(r, n) : body.stream ? { kind: 'stream' } : { kind: 'answer' };
      if (r.path.endsWith('/responses') && (behaviour.kind === 'answer' || behaviour.kind === 'stream')) {
        const previous = body.previous_response_id;
        if (typeof previous === 'string' && responsesMade.get(previous) !== model) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              error: { message: `Previous response with id '${previous}' not found.`, type: 'invalid_request_error', param: 'previous_response_id', code: 'previous_response_not_found' },
            }),
          );
          return;
        }
        const id = randomId('resp');
        responsesMade.set(id, model);
        if (behaviour.kind === 'stream') {
          await writeResponseStream(res, r, id, behaviour);
          return;
        }
        if (behaviour.wait) await behaviour.wait;
        if (behaviour.delayMs) await sleep(behaviour.delayMs);
        if (res.destroyed) return;
        const payload = JSON.stringify(responseObject(id, model, r, behaviour.content ?? `answer from ${model}`, 'completed', behaviour.extra));
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-req-1', 'openai-processing-ms': '1' });
        res.end(payload);
        return;
      }
      switch (behaviour.kind) {
        case 'answer': {
          if (behaviour.wait) await behaviour.wait;
          if (behaviour.delayMs) await sleep(behaviour.delayMs);
          if (res.destroyed) return;
          const answer = r.path.endsWith('/embeddings') ? embeddingList(model, r, behaviour.extra) : completion(model, behaviour.content ?? `answer from ${model}`, r, behaviour.extra);
          const payload = JSON.stringify(answer);
          res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-req-1', 'openai-processing-ms': '1' });
          res.end(payload);
          return;
        }
        case 'stream':
          await writeStream(res, r, behaviour);
          return;
        case 'status': {
          const payload = typeof behaviour.body === 'string' ? behaviour.body : JSON.stringify(behaviour.body ?? { error: { message: `fake ${behaviour.status}`, type: 'server_error', param: null, code: 'fake' } });
          res.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers });
          res.end(payload);
          return;
        }
        case 'hang':
          return;
        case 'malformed':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "chatcmpl-broken", "choices": [');
          return;
        case 'destroy':
          req.socket.destroy();
          return;
        case 'raw': {
          res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/event-stream', ...behaviour.headers });
          res.flushHeaders();
          req.socket.setNoDelay(true);
          const chunks = behaviour.chunks;
          for (let i = 0; i < chunks.length; i++) {
            if (i === (behaviour.waitBefore ?? 0) && behaviour.wait) await behaviour.wait;
            if (i > 0 && behaviour.gapMs) await sleep(behaviour.gapMs);
            if (!(await writeAll(res, chunks[i]!))) return;
            state.written += Buffer.byteLength(chunks[i]!);
          }
          while (behaviour.endless) {
            const last = chunks[chunks.length - 1]!;
            if (!(await writeAll(res, last))) return;
            state.written += Buffer.byteLength(last);
          }
          res.end();
          return;
        }
        case 'big': {
          res.writeHead(behaviour.status ?? 200, { 'content-type': behaviour.contentType ?? 'application/json' });
          const filler = Buffer.alloc(64 * 1024, 0x61);
          let left = behaviour.bytes;
          const head = Buffer.from('{"filler":"');
          if (!(await writeAll(res, head))) return;
          left -= head.length;
          while (left > 2) {
            const piece = left - 2 >= filler.length ? filler : filler.subarray(0, left - 2);
            if (!(await writeAll(res, piece))) return;
            state.written += piece.length;
            left -= piece.length;
          }
          res.end('"}');
          return;
        }
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    received,
    get aborted() {
      return state.aborted;
    },
    get written() {
      return state.written;
    },
    script(model, script) {
      scripts.set(model, typeof script === 'function' ? script : () => script);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
