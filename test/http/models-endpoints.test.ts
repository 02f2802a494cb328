import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/core/config.js';
import { listModels } from '../../src/http/models.js';

describe('GET /v1/models: endpoints', () => {
  it("never lists embeddings for auto, even when a routed model serves them (auto is refused there)", async () => {
    const config = parseConfig({
      models: {
        both: { baseURL: 'http://127.0.0.1:9/v1', model: 'm1', endpoints: ['chat', 'embeddings'] },
        resp: { baseURL: 'http://127.0.0.1:9/v1', model: 'm2', endpoints: ['chat', 'responses'] },
        hidden: { baseURL: 'http://127.0.0.1:9/v1', model: 'm3', endpoints: ['responses'], routed: false },
      },
      logging: { level: 'silent' },
    });
    const app = new Hono().get('/v1/models', listModels({ config, modelKeys: Object.keys(config.models), upstreams: new Map() }));
    const body = (await (await app.request('/v1/models')).json()) as { data: { id: string; endpoints: string[] }[] };
    const byId = Object.fromEntries(body.data.map((m) => [m.id, m.endpoints]));
    expect(byId).toEqual({ auto: ['chat', 'responses'], both: ['chat', 'embeddings'], resp: ['chat', 'responses'], hidden: ['responses'] });
  });
});
