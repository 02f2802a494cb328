// A fast OpenAI-shaped upstream for the benchmark, in its own process.
// POST …/chat/completions answers a fixed completion (with usage), or, when the body asks for
// `"stream": true`, a server-sent-event stream of 8 content chunks, a finish chunk, a usage chunk
// and `data: [DONE]` (each event its own write, as a real model's stream arrives).
// Usage: node bench/mock-upstream.mjs [port]  — prints {"port":N} on stdout once it listens.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);

const answer = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'bench-model',
    system_fingerprint: 'fp_bench',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'A router hums low, / packets find their quiet path, / latency fades.', refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 120, completion_tokens: 18, total_tokens: 138 },
  }),
);

const chunk = (delta, finish, usage) =>
  Buffer.from(
    `data: ${JSON.stringify({
      id: 'chatcmpl-bench0000000000000000000000',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'bench-model',
      choices: usage ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(usage ? { usage } : {}),
    })}\n\n`,
  );
const words = ['A router ', 'hums low, ', 'packets ', 'find their ', 'quiet ', 'path, ', 'latency ', 'fades.'];
const events = [
  chunk({ role: 'assistant', content: '' }, null),
  ...words.map((w) => chunk({ content: w }, null)),
  chunk({}, 'stop'),
  chunk({}, null, { prompt_tokens: 120, completion_tokens: 8, total_tokens: 128 }),
];
const done = Buffer.from('data: [DONE]\n\n');
const STREAM_FLAG = Buffer.from('"stream":true');

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}');
      return;
    }
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    if (body.includes(STREAM_FLAG)) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'mock-req' });
      for (const e of events) res.write(e);
      res.end(done);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length, 'x-request-id': 'mock-req' });
    res.end(answer);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
