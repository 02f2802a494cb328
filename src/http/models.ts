import type { Context } from 'hono';
import type { Config } from '../core/config.js';
import type { Services } from '../pipeline/services.js';
import { errors } from '../core/errors.js';

const CREATED = Math.floor(Date.now() / 1000);

type Endpoint = Config['models'][string]['endpoints'][number];
const ENDPOINT_ORDER: readonly Endpoint[] = ['chat', 'responses', 'embeddings'];

/** The keys of the models whose `endpoints` list `endpoint`, in config order. */
export function servingKeys(config: Pick<Config, 'models'>, endpoint: Endpoint): string[] {
  return Object.keys(config.models).filter((key) => config.models[key]!.endpoints.includes(endpoint));
}

/**
 * The APIs each model id serves: a key its `endpoints`; the auto model those at least one routed model
 * serves, never embeddings (they are never routed: two models' vectors are not interchangeable).
 */
function endpointsById(config: Config): Map<string, Endpoint[]> {
  const out = new Map<string, Endpoint[]>();
  const routed = new Set<Endpoint>();
  for (const [key, model] of Object.entries(config.models)) {
    out.set(key, [...model.endpoints]);
    if (model.routed) for (const e of model.endpoints) if (e !== 'embeddings') routed.add(e);
  }
  out.set(config.router.autoModel, ENDPOINT_ORDER.filter((e) => routed.has(e)));
  return out;
}

function modelObject(id: string, endpoints: readonly Endpoint[]) {
  return { id, object: 'model', created: CREATED, owned_by: 'tracegate', endpoints };
}

/** The auto model first, then every configured key, in OpenAI's list shape; each with the APIs it serves (`endpoints`). */
export function listModels(gw: Pick<Services, 'config' | 'modelKeys' | 'upstreams'>) {
  const endpoints = endpointsById(gw.config);
  const body = {
    object: 'list',
    data: [gw.config.router.autoModel, ...gw.modelKeys].map((id) => modelObject(id, endpoints.get(id)!)),
  };
  return function handleListModels(c: Context) {
    return c.json(body);
  };
}

export function getModel(gw: Pick<Services, 'config' | 'modelKeys' | 'upstreams'>) {
  const endpoints = endpointsById(gw.config);
  return function handleGetModel(c: Context) {
    const id = c.req.param('id') ?? '';
    if (id !== gw.config.router.autoModel && !gw.upstreams.has(id)) throw errors.modelNotFound(id, gw.config.router.autoModel, gw.modelKeys);
    return c.json(modelObject(id, endpoints.get(id)!));
  };
}
