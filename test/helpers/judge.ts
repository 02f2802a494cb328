import { request } from 'undici';
import type { Behaviour, FakeUpstream, ReceivedRequest } from './fake-upstream.js';
import { startTestGateway, type TestGateway } from './gateway.js';

/**
 * A scripted judge: it grades an answer from a truth table the gateway never sees (each fake
 * upstream's answer carries its model name: `small-model` answers are worth 0.2, `large-model`
 * answers 0.9).
 */
export const TRUTH: Record<string, number> = { 'small-model': 0.2, 'large-model': 0.9 };

/** A promise the test opens when it chooses (held judge answers wait on it). */
export class Gate {
  open!: () => void;
  readonly promise = new Promise<void>((resolve) => (this.open = resolve));
}

/** The text of the judge request's user message (the graded exchange). */
export function gradedText(req: ReceivedRequest): string {
  const messages = req.body.messages as { role: string; content: string }[];
  return messages.find((m) => m.role === 'user')?.content ?? '';
}

/** The model name the graded answer carries (null if none). */
export function gradedModel(req: ReceivedRequest): string | null {
  const text = gradedText(req);
  const answer = text.slice(text.indexOf("## The assistant's answer"));
  return Object.keys(TRUTH).find((m) => answer.includes(m)) ?? null;
}

/** Whether a request is a judge's grading (not a client's request pinned to the judge model). */
export function isGrading(req: ReceivedRequest): boolean {
  const messages = req.body.messages as { role: string; content: string }[];
  return messages[0]?.role === 'system' && messages[0].content.includes('Reply with only a JSON object');
}

/**
 * The judge's reply from the truth table, held until `gate` opens when one is given; a request that
 * is not a grading gets the fake upstream's plain answer.
 */
export function grade(req: ReceivedRequest, gate?: Gate): Behaviour {
  if (!isGrading(req)) return { kind: 'answer' };
  const model = gradedModel(req);
  const score = model === null ? 0 : TRUTH[model]!;
  return { kind: 'answer', content: JSON.stringify({ score, reason: `graded ${model}` }), wait: gate?.promise };
}

/**
 * Models small and large (routed; `heuristic` sends short queries to small and long ones to large) and
 * `grader`, the judge: `routed: false`, though the largest (`heuristic` would pick it for long queries).
 */
export function judgeModels(upstream: FakeUpstream, judgeModel: string) {
  return {
    small: { baseURL: upstream.baseURL, model: 'small-model', sizeB: 3, inputCostPerMTok: 0.1, outputCostPerMTok: 0.2, timeoutMs: 5000 },
    large: { baseURL: upstream.baseURL, model: 'large-model', sizeB: 70, inputCostPerMTok: 2.5, outputCostPerMTok: 10, timeoutMs: 5000 },
    grader: { baseURL: upstream.baseURL, model: judgeModel, sizeB: 400, routed: false, inputCostPerMTok: 1, outputCostPerMTok: 1, timeoutMs: 5000 },
  };
}

/**
 * A gateway whose judge is `grader` (upstream model `judgeModel`), sampling every routed answer unless
 * told otherwise. The implicit signal is off: these tests send the same prompt again and again, and a
 * resend would mark the earlier answer (implicit feedback, which a judge's score may not replace).
 */
export function startJudgeGateway(
  upstream: FakeUpstream,
  judgeModel: string,
  router: { judge?: Record<string, unknown>; shadow?: Record<string, unknown> } = {},
): Promise<TestGateway> {
  return startTestGateway(upstream, {
    models: judgeModels(upstream, judgeModel),
    router: {
      policy: 'heuristic',
      defaultModel: 'small',
      seed: 7,
      judge: { model: 'grader', sampleRate: 1, ...router.judge },
      ...(router.shadow ? { shadow: router.shadow } : {}),
      implicit: false,
    },
  });
}

export const SHORT = 'say hi';
export const LONG = `Summarize this text in a paragraph. ${'Lorem ipsum dolor sit amet. '.repeat(25)}`;

/** Sends one `auto` request; its trace id, model key and answer. */
export async function ask(gw: TestGateway, content: string, system?: string) {
  const messages = [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user' as const, content }];
  const { data, response } = await gw.client.chat.completions.create({ model: 'auto', messages }).withResponse();
  return { traceId: response.headers.get('x-trace-id')!, model: response.headers.get('x-router-model')!, answer: data.choices[0]!.message.content };
}

export async function getJson(gw: TestGateway, path: string): Promise<Record<string, any>> {
  return (await (await request(`${gw.url}${path}`)).body.json()) as Record<string, any>;
}

/** GET /metrics as text; `adminKey` for a gateway with client keys (which closes /metrics without it). */
export async function metricsText(gw: TestGateway, adminKey?: string): Promise<string> {
  return (await request(`${gw.url}/metrics`, { headers: adminKey ? { authorization: `Bearer ${adminKey}` } : {} })).body.text();
}

/** The value of one sample line of the Prometheus text (0 when absent). */
export function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}
