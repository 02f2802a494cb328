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

/** The text of every message, as the prompt's token count is estimated from it. */
function promptText(messages: readonly ChatMessage[]): string {
  return messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
}

/** One HTTP server on 127.0.0.1 that answers as any of the simulated models (chosen by `model`). */
export async function startSimulatedUpstream(
  models: Record<string, SimulatedModel>,
  options: SimulatedUpstreamOptions = {},
): Promise<SimulatedUpstream> {
  const random = new Random(options.seed);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { model?: string; stream?: boolean; stream_options?: { include_usage?: boolean } | null; messages?: ChatMessage[] };
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
      const messages = Array.isArray(body.messages) ? body.messages : [];
      const last = messages.at(-1)?.content;
      const delay = sim.latencyMs * (0.5 + random.uniform());
      const fails = random.uniform() < sim.failureRate;
      setTimeout(() => {
        if (fails) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(
            JSON.stringify({ error: { message: `${model} is overloaded`, type: 'server_error', param: null, code: 'overloaded' } }),
          );
          return;
        }
        const content = sim.reply ? sim.reply(messages) : `(${model}) Here is my answer to: ${(typeof last === 'string' ? last : '').slice(0, 60)}`;
        const answer = completion(model, promptText(messages), content, body.stream === true, body.stream_options?.include_usage === true);
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
