import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { request } from 'undici';
import { runDemo } from '../../src/demo/run-demo.js';
import { CLI } from '../helpers/process.js';

const run = promisify(execFile);

function sink() {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { out, text: () => text };
}

describe('tracegate demo', () => {
  it('routing converges on the simulated models, every request is answered, and the gateway stays up', async () => {
    const { out, text } = sink();
    // 1,500 requests: with 900, an unlucky start (the best model of `code` judged on a few thumbs
    // down while the runner-up had its luck) left the last quarter short of 70% in about 1 run of 10.
    // With 1,500, `code`'s best model took 87–100% of its last quarter in the 9 runs alone whose
    // shares I printed (3 of them with both cores busy), but 68% in one of two full suite runs
    // (deep-thinker, its runner-up at 0.75 thumbs-up against 0.93, took the rest; why the suite
    // makes this likelier is not known). So each class's best model must take ≥ 60% of the class's
    // last quarter (uniform routing would give it 25%).
    const demo = await runDemo({ requests: 1500, concurrency: 4, port: 0, seed: 3, every: 300, out });
    try {
      expect(demo.answered).toBe(1500);
      expect(demo.failed).toBe(0);
      for (const [cls, share] of Object.entries(demo.bestShare)) expect(share, `${cls}: ${text()}`).toBeGreaterThanOrEqual(0.6);
      expect(text()).toMatch(/after 30\d requests/);
      const stats = (await (await request(`${demo.running.url}/stats`)).body.json()) as { total_traces: number };
      expect(stats.total_traces).toBeGreaterThanOrEqual(1500);
    } finally {
      await demo.close();
    }
  });

  it('runs from the command line', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--requests', '120', '--port', '0', '--exit']);
    expect(stdout).toContain('tracegate demo:');
    expect(stdout).toMatch(/done: 120 answered, 0 failed/);
  });
});
