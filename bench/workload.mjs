// What the benchmarks measure: the gateway's config (four models on the mock upstream, different
// prices, `model: "auto"` routed by the `adaptive` policy, traces in a fresh SQLite file or the
// database given, prompts stored truncated, warnings only in the log) and the requests they send.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes the config into `dir` and returns its path. */
export function writeTracegateConfig(dir, mockPort, port, database = { path: join(dir, 'traces.db') }) {
  const baseURL = `http://127.0.0.1:${mockPort}/v1`;
  const model = (input, output) => ({ baseURL, model: 'bench-model', inputCostPerMTok: input, outputCostPerMTok: output, timeoutMs: 30_000 });
  const config = {
    server: { host: '127.0.0.1', port },
    database,
    models: { mini: model(0.15, 0.6), pro: model(2.5, 10), coder: model(1, 4), budget: model(0.05, 0.2) },
    router: { autoModel: 'auto', policy: 'adaptive', costWeight: 0, halfLife: 50, updateIntervalSeconds: 0 },
    traces: { storePrompts: 'truncated', truncateChars: 200 },
    logging: { level: 'warn' },
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const PROMPT =
  'I run a small online shop and I am choosing between two shipping providers for parcels inside Europe. ' +
  'One is cheaper per parcel but slower and has a worse record for lost packages; the other costs about ' +
  'a fifth more but delivers in two days and offers tracking by text message. Which would you pick for a ' +
  'shop that sends about forty parcels a week, and what should I ask each of them before I sign?';
const SHORT_PROMPT = 'Which of two shipping providers should a small shop pick for forty parcels a week inside Europe?';

/**
 * A chat request's body: a system message and a 480-character question (`short`: a 98-character
 * one, without `temperature`, as bench/instructions.mjs and bench/compare.mjs send).
 */
export function chatBody(model, { stream = false, short = false } = {}) {
  return JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a concise, practical assistant.' },
      { role: 'user', content: short ? SHORT_PROMPT : PROMPT },
    ],
    ...(short ? {} : { temperature: 0.2 }),
    max_tokens: 256,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
}
