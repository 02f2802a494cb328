// The gateway every benchmark measures: four models on the mock upstream (different prices),
// `model: "auto"` routed by the `adaptive` policy, traces in a fresh SQLite file (or the database
// given), prompts stored truncated, warnings only in the log.
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
