import type { Context } from 'hono';
import type { Services } from '../pipeline/services.js';
import { errors } from '../core/errors.js';

const CREATED = Math.floor(Date.now() / 1000);

function modelObject(id: string) {
  return { id, object: 'model', created: CREATED, owned_by: 'tracegate' };
}

/** The auto model first, then every configured key, in OpenAI's list shape. */
export function listModels(gw: Pick<Services, 'config' | 'modelKeys' | 'upstreams'>) {
  const body = {
    object: 'list',
    data: [gw.config.router.autoModel, ...gw.modelKeys].map(modelObject),
  };
  return function handleListModels(c: Context) {
    return c.json(body);
  };
}

export function getModel(gw: Pick<Services, 'config' | 'modelKeys' | 'upstreams'>) {
  return function handleGetModel(c: Context) {
    const id = c.req.param('id') ?? '';
    if (id !== gw.config.router.autoModel && !gw.upstreams.has(id)) throw errors.modelNotFound(id, gw.config.router.autoModel, gw.modelKeys);
    return c.json(modelObject(id));
  };
}
