import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Random } from '../routing/random.js';

/**
 * A simulated model: how often it answers, how fast, and what it says. A plain model's answer names
 * it (`(code-pro) Here is my answer to: …`), so whoever reads the answer knows who wrote it.
 */
export interface SimulatedModel {
  /** Probability that a request fails with a 503. */
  failureRate: number;
  /** Typical latency in milliseconds. */
  latencyMs: number;
  /** The answer's text for a request's messages (absent: the plain answer naming the model). */
  reply?: (messages: readonly ChatMessage[]) => string;
}

export interface ChatMessage {
  role?: unknown;
  content?: unknown;
}

export interface SimulatedUpstream {
  baseURL: string;
  close(): Promise<void>;
}

export interface SimulatedUpstreamOptions {
  /** Seed of the latency and failure draws (unset = random). */
  seed?: number;
}

/**
 * The answer's bytes: one JSON completion, or the stream's events. A stream carries a usage event
 * (empty `choices`, before `[DONE]`) only when the request asked for it (`stream_options.include_usage`),
 * as OpenAI's does.
 */
function completion(model: string, prompt: string, content: string, stream: boolean, streamUsage: boolean): string | string[] {
  const usage = { prompt_tokens: Math.ceil(prompt.length / 4), completion_tokens: Math.ceil(content.length / 4) };
  const id = `chatcmpl-demo-${Math.random().toString(36).slice(2, 10)}`;
  const created = Math.floor(Date.now() / 1000);
  if (!stream) {
    return JSON.stringify({
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    });
  }
  const chunk = (body: Record<string, unknown>) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, ...body })}\n\n`;
  return [
    ...content.split(/(?<= )/).map((piece) => chunk({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })),
    chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
    ...(streamUsage ? [chunk({ choices: [], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } })] : []),
    'data: [DONE]\n\n',
  ];
}

/**
 * A Responses API answer (`POST /responses`): one response object, or its stream of events
 * (`response.created`, `response.output_text.delta`…, `response.completed` with the usage), as
 * OpenAI's are.
 */
function response(model: string, id: string, prompt: string, content: string, stream: boolean): string | string[] {
  const usage = { input_tokens: Math.ceil(prompt.length / 4), output_tokens: Math.ceil(content.length / 4) };
  const created_at = Math.floor(Date.now() / 1000);
  const message = { id: `msg_${id.slice(5)}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: content, annotations: [] }] };
  const done = { id, object: 'response', created_at, status: 'completed', model, output: [message], usage: { ...usage, total_tokens: usage.input_tokens + usage.output_tokens } };
  if (!stream) return JSON.stringify(done);
  let sequence = 0;
  const event = (type: string, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...body })}\n\n`;
  return [
    event('response.created', { response: { ...done, status: 'in_progress', output: [], usage: null } }),
    ...content.split(/(?<= )/).map((delta) => event('response.output_text.delta', { item_id: message.id, output_index: 0, content_index: 0, delta })),
    event('response.output_text.done', { item_id: message.id, output_index: 0, content_index: 0, text: content }),
    event('response.completed', { response: done }),
  ];
}

/** The text of a Responses API request's `instructions` and `input` (a string, or items with text). */
function responsesText(body: { instructions?: unknown; input?: unknown }): { prompt: string; last: string } {
  const texts: string[] = typeof body.instructions === 'string' ? [body.instructions] : [];
  let last = '';
  if (typeof body.input === 'string') texts.push((last = body.input));
  else if (Array.isArray(body.input)) {
    for (const item of body.input as { content?: unknown }[]) {
      const content = item?.content;
      const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join('') : '';
      texts.push((last = text));
    }
  }
  return { prompt: texts.join('\n'), last };
}

/** The text of every message, as the prompt's token count is estimated from it. */
function promptText(messages: readonly ChatMessage[]): string {
  return messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
}

const MAX_REMEMBERED = 10_000;

/**
 * One HTTP server on 127.0.0.1 that answers as any of the simulated models (chosen by `model`):
 * chat completions on any path, and the Responses API on a path ending in `/responses`.
 */
export async function startSimulatedUpstream(
  models: Record<string, SimulatedModel>,
  options: SimulatedUpstreamOptions = {},
): Promise<SimulatedUpstream> {
  const random = new Random(options.seed);
  /** The Responses API ids each model made (its newest MAX_REMEMBERED). */
  const made = new Map<string, Set<string>>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: {
        model?: string;
        stream?: boolean;
        stream_options?: { include_usage?: boolean } | null;
        messages?: ChatMessage[];
        instructions?: unknown;
        input?: unknown;
        previous_response_id?: unknown;
      };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
        return;
      }
      const model = String(body.model);
      const sim = models[model];
      if (!sim) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(
          JSON.stringify({ error: { message: `no model ${model}`, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } }),
        );
        return;
      }
      const responses = (req.url ?? '').split('?')[0]!.endsWith('/responses');
      // A response continues one this model made, as OpenAI's state is kept where it was made.
      const previous = body.previous_response_id;
      if (responses && typeof previous === 'string' && !made.get(model)?.has(previous)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(
          JSON.stringify({ error: { message: `Previous response with id '${previous}' not found.`, type: 'invalid_request_error', param: 'previous_response_id', code: 'previous_response_not_found' } }),
        );
        return;
      }
      const messages = Array.isArray(body.messages) ? body.messages : [];
      const asked = responses ? responsesText(body) : null;
      const last = asked !== null ? asked.last : messages.at(-1)?.content;
      const delay = sim.latencyMs * (0.5 + random.uniform());
      const fails = random.uniform() < sim.failureRate;
      setTimeout(() => {
        if (fails) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(
            JSON.stringify({ error: { message: `${model} is overloaded`, type: 'server_error', param: null, code: 'overloaded' } }),
          );
          return;
        }
        const content = sim.reply && asked === null ? sim.reply(messages) : `(${model}) Here is my answer to: ${(typeof last === 'string' ? last : '').slice(0, 60)}`;
        let answer: string | string[];
        if (asked !== null) {
          const id = `resp_demo${Math.random().toString(36).slice(2, 14)}`;
          const ids = made.get(model) ?? made.set(model, new Set()).get(model)!;
          // The demo remembers its newest responses only.
          if (ids.size >= MAX_REMEMBERED) ids.delete(ids.values().next().value!);
          ids.add(id);
          answer = response(model, id, asked.prompt, content, body.stream === true);
        } else {
          answer = completion(model, promptText(messages), content, body.stream === true, body.stream_options?.include_usage === true);
        }
        if (typeof answer === 'string') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
        } else {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (const piece of answer) res.write(piece);
          res.end();
        }
      }, delay);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
