import { describe, expect, it } from 'vitest';
import { routedKeysByEndpoint } from '../../src/app/gateway.js';
import { parseConfig } from '../../src/core/config.js';
import { routableModels } from '../../src/pipeline/routable-models.js';
import { SizeLimits } from '../../src/routing/size-limits.js';
import { UpstreamHealth } from '../../src/upstream/health.js';
import { createUpstreams } from '../../src/upstream/upstream.js';

const config = parseConfig({
  models: {
    both: { baseURL: 'http://127.0.0.1:9/v1', model: 'b', endpoints: ['chat', 'responses'] },
    chat: { baseURL: 'http://127.0.0.1:9/v1', model: 'c' },
    resp: { baseURL: 'http://127.0.0.1:9/v1', model: 'r', endpoints: ['responses'] },
    emb: { baseURL: 'http://127.0.0.1:9/v1', model: 'e', endpoints: ['embeddings'] },
    quiet: { baseURL: 'http://127.0.0.1:9/v1', model: 'q', endpoints: ['chat', 'responses'], routed: false },
  },
  logging: { level: 'silent' },
});

describe('routing per API', () => {
  it('the routed models of an API are those routed that list it, in config order', () => {
    const routedFor = routedKeysByEndpoint(config);
    expect(routedFor('chat')).toEqual(['both', 'chat']);
    expect(routedFor('responses')).toEqual(['both', 'resp']);
    // A routed model that serves embeddings only is in no routed set (embeddings are never routed).
    expect(routedFor('embeddings')).toEqual(['emb']);
  });

  it('routableModels offers, per API, its routed models not tried yet', async () => {
    const upstreams = createUpstreams(config.models);
    try {
      const gw = { routedFor: routedKeysByEndpoint(config), upstreams, health: new UpstreamHealth({ failures: 3, cooldownMs: 1000 }), sizeLimits: new SizeLimits() };
      expect(routableModels(gw, 'chat', [])).toEqual(['both', 'chat']);
      expect(routableModels(gw, 'responses', [])).toEqual(['both', 'resp']);
      expect(routableModels(gw, 'responses', ['both'])).toEqual(['resp']);
      expect(routableModels(gw, 'chat', ['both', 'chat'])).toEqual([]);
    } finally {
      await Promise.all([...upstreams.values()].map((u) => u.close()));
    }
  });
});
