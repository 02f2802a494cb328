import type { Context } from 'hono';
import { z } from 'zod';
import type { Services } from '../pipeline/services.js';
import { errors } from '../core/errors.js';
import type { GatewayEnv } from './guard.js';
import { readBody } from './read-body.js';
import { traceIdSchema } from './admin-query.js';

const FEEDBACK_BODY_LIMIT = 64 * 1024;

const feedbackSchema = z
  .object({
    trace_id: traceIdSchema,
    feedback: z.number().min(0).max(1).optional(),
    thumbs: z.enum(['up', 'down']).optional(),
    comment: z.string().max(4000).nullish(),
  })
  .refine((b) => (b.feedback === undefined) !== (b.thumbs === undefined), {
    message: "give exactly one of 'feedback' (a number from 0 to 1) or 'thumbs' ('up' or 'down')",
    path: ['feedback'],
  });

function parseFeedback(raw: Buffer) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw errors.invalidJson((err as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw errors.invalidBody('Request body must be a JSON object');
  }
  const result = feedbackSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = issue.path.join('.') || null;
    throw errors.invalidBody(`Invalid '${param ?? '(body)'}': ${issue.message}`, param);
  }
  return result.data;
}

/** POST /feedback: a person's score (0..1) or thumbs for a trace (source `human`); the policy learns from it at once. */
export function postFeedback(gw: Pick<Services, 'keys' | 'metrics' | 'policy' | 'store'>) {
  return async function handleFeedback(c: Context<GatewayEnv>) {
    const body = parseFeedback(await readBody(c.env.incoming, FEEDBACK_BODY_LIMIT));
    const score = body.feedback ?? (body.thumbs === 'up' ? 1 : 0);
    // Only the key that made the trace may judge it (the admin key may judge any); another key
    // gets the same 404 as for a trace that does not exist.
    const owner = gw.keys.requiresClientKey && !c.get('admin') ? c.get('keyName') : undefined;
    const result = await gw.store.setFeedback(
      body.trace_id,
      { score, comment: body.comment ?? null, time: Date.now(), source: 'human' },
      owner,
    );
    if (!result) throw errors.traceNotFound(body.trace_id);
    const { trace, previous } = result;
    if (trace.outcome === 'refused') throw errors.traceNotRateable(trace.id);
    gw.metrics.feedback(trace.modelKey, 'human');
    // Feedback the store refused (it keeps feedback from a source this one may not replace) changes
    // nothing the policy knows.
    if (result.applied) {
      gw.policy.observeFeedback({
        traceId: trace.id,
        queryClass: trace.queryClass,
        model: trace.modelKey,
        outcome: trace.outcome,
        score,
        previous,
        source: 'human',
      });
    }
    return c.json({ ok: true, trace_id: trace.id, feedback: score, previous });
  };
}

