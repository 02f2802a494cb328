/*
 * The gateway's own classes (the judge's calls, embeddings) are never routing evidence: no policy
 * learns them online, and a rebuild from a store that holds them leaves them out.
 */
import { describe, expect, it } from 'vitest';
import { createRouterPolicy } from '../../src/app/gateway.js';
import { parseConfig } from '../../src/core/config.js';
import { EMBEDDING_CLASS, JUDGE_CLASS, isRoutingEvidence } from '../../src/core/reserved-classes.js';
import { policyNames } from '../../src/routing/registry.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { makeTrace } from '../helpers/trace.js';

function config(policy: string) {
  return parseConfig({
    database: { path: ':memory:' },
    models: {
      a: { baseURL: 'http://127.0.0.1:1/v1', model: 'a-model', inputCostPerMTok: 1, outputCostPerMTok: 2 },
      b: { baseURL: 'http://127.0.0.1:1/v1', model: 'b-model', inputCostPerMTok: 3, outputCostPerMTok: 4 },
      emb: { baseURL: 'http://127.0.0.1:1/v1', model: 'emb-model', endpoints: ['embeddings'], routed: false, inputCostPerMTok: 0.02 },
    },
    router: { policy, seed: 1 },
    logging: { level: 'silent' },
  });
}

/** A store with chat traces of class `short` and `code`, embedding traces (rated too) and judge traces. */
async function storeWithReservedTraces(): Promise<SqliteTraceStore> {
  const store = new SqliteTraceStore({ path: ':memory:' });
  for (let i = 0; i < 30; i++) {
    await store.insert(makeTrace({ queryClass: i % 2 ? 'short' : 'code', modelKey: i % 3 ? 'a' : 'b', feedback: i % 4 === 0 ? 1 : null }));
    await store.insert(
      makeTrace({ queryClass: EMBEDDING_CLASS, modelKey: 'emb', upstreamModel: 'emb-model', routed: false, reason: 'pinned', endpoint: 'embeddings', completionTokens: null, feedback: i % 2 }),
    );
    await store.insert(makeTrace({ queryClass: JUDGE_CLASS, modelKey: 'b', routed: false, reason: 'judge' }));
  }
  return store;
}

describe('reserved query classes', () => {
  it('judge and embedding are the reserved ones', () => {
    expect(isRoutingEvidence(JUDGE_CLASS)).toBe(false);
    expect(isRoutingEvidence(EMBEDDING_CLASS)).toBe(false);
    expect(isRoutingEvidence('short')).toBe(true);
  });

  it.each(policyNames())('the %s policy rebuilt from a store with embedding and judge traces has neither class', async (name) => {
    const store = await storeWithReservedTraces();
    try {
      const policy = createRouterPolicy(config(name), store);
      await policy.updateFromTraces();
      // Observed live, they are ignored too.
      policy.observe({ traceId: 'live-embedding', query: 'x', queryClass: EMBEDDING_CLASS, model: 'emb', outcome: 'success', latencyMs: 5, costUsd: 0.0001, feedback: 1, shadow: false });
      const classes = policy.snapshot().classes.map((c) => c.queryClass);
      expect(classes).not.toContain(EMBEDDING_CLASS);
      expect(classes).not.toContain(JUDGE_CLASS);
      // A policy that learns from the store learned the chat classes, and nothing of the embedding model.
      if (name !== 'heuristic') {
        expect(classes).toEqual(expect.arrayContaining(['short', 'code']));
        for (const c of policy.snapshot().classes) {
          for (const arm of c.arms.filter((a) => a.model === 'emb')) expect(arm.samples).toBe(0);
        }
      }
    } finally {
      await store.close();
    }
  });
});
