import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A simulated model: how often it answers, how fast, and nothing else (quality is judged by the simulated user). */
export interface SimulatedModel {
  /** Probability that a request fails with a 503. */
  failureRate: number;
  /** Typical latency in milliseconds. */
  latencyMs: number;
}

export interface SimulatedUpstream {
  baseURL: string;
  close(): Promise<void>;
}

function completion(model: string, prompt: string, stream: boolean): string | string[] {
  const content = `(${model}) Here is my answer to: ${prompt.slice(0, 60)}`;
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
    chunk({ choices: [], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }),
    'data: [DONE]\n\n',
  ];
}

/** One HTTP server on 127.0.0.1 that answers as any of the simulated models (chosen by `model`). */
export async function startSimulatedUpstream(models: Record<string, SimulatedModel>): Promise<SimulatedUpstream> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { model?: string; stream?: boolean; messages?: Array<{ content?: unknown }> };
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
      const last = body.messages?.at(-1)?.content;
      const prompt = typeof last === 'string' ? last : '';
      const delay = sim.latencyMs * (0.5 + Math.random());
      setTimeout(() => {
        if (Math.random() < sim.failureRate) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(
            JSON.stringify({ error: { message: `${model} is overloaded`, type: 'server_error', param: null, code: 'overloaded' } }),
          );
          return;
        }
        const answer = completion(model, prompt, body.stream === true);
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
