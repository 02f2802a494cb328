import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { request } from 'undici';
import { runDemo } from '../../src/demo/run-demo.js';
import { DEMO_CONCURRENCY, DEMO_QUALITY, DEMO_REQUESTS } from '../../src/demo/scenario.js';
import { simulatedJudge } from '../../src/demo/simulated-judge.js';
import { judgeRequestBody, verdictOfCompletion } from '../../src/judge/verdict.js';
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

interface StatsBody {
  total_traces: number;
  feedback_by_source: Record<string, number>;
  judge: { scored: number; calls: number };
}

describe('tracegate demo', () => {
  it("the simulated judge reads the gateway's grading request and scores from the truth table", () => {
    const judge = simulatedJudge(DEMO_QUALITY, 0, 1);
    const grade = (query: string, answer: string) => {
      const body = JSON.parse(judgeRequestBody('judge', { system: 'You are the assistant of a demo app.', query, answer }, undefined, true)) as {
        messages: { role: string; content: string }[];
      };
      const content = judge.reply(body.messages);
      const payload = JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content } }] });
      return verdictOfCompletion(Buffer.from(payload))!.score;
    };
    const query = 'Why does this throw? ```js\nconst xs = [1, 2, 3];\n```';
    expect(Math.abs(grade(query, `(code-pro) Here is my answer to: ${query}`) - DEMO_QUALITY.code!['code-pro']!)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(grade(query, `(mini-chat) Here is my answer to: ${query}`) - DEMO_QUALITY.code!['mini-chat']!)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(grade('hi!', '(mini-chat) Here is my answer to: hi!') - DEMO_QUALITY.short!['mini-chat']!)).toBeLessThanOrEqual(0.05);
    // An answer that names no demo model gets a middling score.
    expect(grade('hi!', 'Hello there')).toBe(0.5);
    // With noise 1 the judge is always wrong: it turns the score over.
    const wrong = simulatedJudge(DEMO_QUALITY, 1, 1);
    const body = JSON.parse(judgeRequestBody('judge', { system: '', query: 'hi!', answer: '(mini-chat) ok' }, undefined, true)) as {
      messages: { role: string; content: string }[];
    };
    const score = (JSON.parse(wrong.reply(body.messages)) as { score: number }).score;
    expect(Math.abs(score - (1 - DEMO_QUALITY.short!['mini-chat']!))).toBeLessThanOrEqual(0.05);
  });

  it(
    'routing converges on each class best model with users rating 5% of the answers and a judge grading a sample',
    async () => {
      const { out, text } = sink();
      // Users rate 5% of the answers, a judge grades 25% (and both answers of the 30% of requests
      // that get a shadow call). Everything random is seeded (seed 3), but requests run
      // DEMO_CONCURRENCY at a time and the judge and shadow calls in the background, so runs differ in
      // how they interleave. Over 5 runs of this file (load average 5–11 on two cores), each class sent
      // 97.7–100% of its last 300 requests to its best model; users rated 4.7–5.0% of the answers,
      // the judge scored 42.6–43.9% of the served ones and 100% of the 25.2–26.5% that got a shadow
      // answer; the bounds below sit well outside those ranges. With the judge alone
      // (`--shadow-rate 0`), `code` stays on its runner-up in 6 runs of 10: hence the shadow calls.
      const demo = await runDemo({ requests: DEMO_REQUESTS, concurrency: DEMO_CONCURRENCY, port: 0, seed: 3, every: 600, out });
      try {
        expect(demo.answered).toBe(DEMO_REQUESTS);
        expect(demo.failed).toBe(0);
        for (const [cls, share] of Object.entries(demo.bestShare)) expect(share, `${cls}: ${text()}`).toBeGreaterThanOrEqual(0.8);
        expect(text()).toMatch(/after 600 requests/);

        // Users rated about 5% of the answers; the judge scored more (its sample, and the served answers
        // of shadow calls), and the shadow answers; nothing looked like a regenerated answer.
        expect(demo.rated / DEMO_REQUESTS).toBeGreaterThan(0.03);
        expect(demo.rated / DEMO_REQUESTS).toBeLessThan(0.07);
        expect(demo.served.feedback.human).toBe(demo.rated);
        expect(demo.served.feedback.judge! / DEMO_REQUESTS).toBeGreaterThan(0.3);
        expect(demo.served.feedback.judge! / DEMO_REQUESTS).toBeLessThan(0.5);
        expect(demo.served.feedback.implicit ?? 0).toBe(0);
        expect(demo.shadow!.answered).toBeGreaterThan(DEMO_REQUESTS * 0.1);
        expect(demo.shadowed.traces).toBe(demo.shadow!.calls);
        expect(demo.shadowed.feedback.judge).toBeGreaterThan(demo.shadow!.answered * 0.9);
        expect(demo.judge.unparsed + demo.judge.failed).toBe(0);
        expect(demo.judge.scored).toBe((demo.served.feedback.judge ?? 0) + (demo.shadowed.feedback.judge ?? 0) + demo.judge.refused);
        expect(demo.dollars.judge).toBeGreaterThan(0);
        expect(demo.dollars.shadow).toBeGreaterThan(0);
        expect(text()).toMatch(new RegExp(`users rated ${demo.rated} answers \\(\\d+%\\); the judge scored ${demo.served.feedback.judge} answers`));

        const stats = (await (await request(`${demo.running.url}/stats`)).body.json()) as StatsBody;
        expect(stats.total_traces).toBeGreaterThanOrEqual(DEMO_REQUESTS + demo.shadow!.calls + demo.judge.calls);
        expect(stats.judge.scored).toBe(demo.judge.scored);
        expect(stats.feedback_by_source.human).toBe(demo.rated);
        expect(stats.feedback_by_source.judge).toBe((demo.served.feedback.judge ?? 0) + (demo.shadowed.feedback.judge ?? 0));

        // The simulated models speak the Responses API too: a follow-up goes to the model holding the state.
        const client = new OpenAI({ baseURL: `${demo.running.url}/v1`, apiKey: 'unused', maxRetries: 0 });
        const first = await client.responses.create({ model: 'auto', instructions: 'be brief', input: 'write a python function' }).withResponse();
        expect(first.data.output_text).toContain('Here is my answer to: write a python function');
        expect(first.data.usage?.input_tokens).toBeGreaterThan(0);
        const holder = first.response.headers.get('x-router-model');
        const next = await client.responses.create({ model: 'auto', input: 'and in rust?', previous_response_id: first.data.id, stream: true }).withResponse();
        let streamed = '';
        for await (const event of next.data) if (event.type === 'response.output_text.delta') streamed += event.delta;
        expect(streamed).toContain(`(${holder}) Here is my answer to: and in rust?`);
        expect(next.response.headers.get('x-router-reason')).toBe('sticky');
      } finally {
        await demo.close();
      }
    },
    180_000,
  );

  it('runs from the command line', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--requests', '120', '--port', '0', '--seed', '3', '--exit']);
    expect(stdout).toContain('tracegate demo:');
    expect(stdout).toMatch(/done: 120 answered, 0 failed/);
    expect(stdout).toMatch(/signals: users rated \d+ answers \(\d+%\); the judge scored \d+ answers \(\d+%\) and \d+ shadow answers/);
    expect(stdout).toMatch(/\$\d+\.\d{4} on \d+ judge calls/);
  });
});
