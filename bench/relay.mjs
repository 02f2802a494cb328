// The bare relay the benchmark compares tracegate with: node:http + one undici Pool. It reads the
// body, parses it, rewrites `model`, forwards it and relays the answer (a stream is piped through).
// No routing, no trace, no validation, no failover, no timeouts.
// Usage: node bench/relay.mjs UPSTREAM_ORIGIN [port]  — prints {"port":N} once it listens.
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';

const origin = process.argv[2];
const port = Number(process.argv[3] ?? 0);
const pool = new Pool(origin, { connections: 128 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date', 'server']);

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      request.model = 'bench-model';
      const up = await pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      const headers = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k)) headers[k] = v;
      if (request.stream === true) {
        res.writeHead(up.statusCode, headers);
        pipeline(up.body, res, () => {});
      } else {
        const body = Buffer.from(await up.body.arrayBuffer());
        headers['content-length'] = body.length;
        res.writeHead(up.statusCode, headers);
        res.end(body);
      }
    } catch (err) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(err), type: 'relay_error', param: null, code: null } }));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
