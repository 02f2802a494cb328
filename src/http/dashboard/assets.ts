import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The dashboard's static files. The page's own HTML/JS/CSS live in `src/http/dashboard/static/`
 * and are read relative to the package root (tsc does not copy them to dist/, and both
 * `src/http/dashboard` and `dist/http/dashboard` are three folders below the root); uPlot comes from
 * node_modules. Nothing is fetched from a CDN.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const STATIC = resolve(ROOT, 'src/http/dashboard/static');
const require = createRequire(import.meta.url);

export interface Asset {
  file: string;
  contentType: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** URL name under /dashboard/assets/ → file and type. A fixed list: no path from the request reaches the file system. */
export const ASSETS: Record<string, () => Asset> = {
  'uplot.js': () => ({ file: require.resolve('uplot/dist/uPlot.iife.min.js'), contentType: JS }),
  'uplot.css': () => ({ file: require.resolve('uplot/dist/uPlot.min.css'), contentType: CSS }),
  'dashboard.js': () => ({ file: resolve(STATIC, 'dashboard.js'), contentType: JS }),
  'signals.js': () => ({ file: resolve(STATIC, 'signals.js'), contentType: JS }),
  'sign-in.js': () => ({ file: resolve(STATIC, 'sign-in.js'), contentType: JS }),
  'chart.js': () => ({ file: resolve(STATIC, 'chart.js'), contentType: JS }),
  'dashboard.css': () => ({ file: resolve(STATIC, 'dashboard.css'), contentType: CSS }),
};

export const PAGE: Asset = { file: resolve(STATIC, 'index.html'), contentType: 'text/html; charset=utf-8' };

const cache = new Map<string, Promise<Buffer>>();

/** Reads a file once and keeps it; a failed read is not kept, so the next request tries again. */
export function load(asset: Asset): Promise<Buffer> {
  let body = cache.get(asset.file);
  if (!body) {
    body = readFile(asset.file);
    cache.set(asset.file, body);
    body.catch(() => cache.delete(asset.file));
  }
  return body;
}
