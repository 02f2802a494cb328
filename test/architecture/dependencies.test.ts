import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * Dependencies point one way: the path of a request, top to bottom. A module may import from its own
 * folder and from folders of a lower layer; folders of one layer may import each other only where
 * they are listed as peers. Type-only imports count too.
 */
const LAYERS: Record<string, number> = {
  'cli.ts': 9,
  commands: 8,
  demo: 8,
  app: 7,
  eval: 7,
  http: 6,
  reports: 5,
  pipeline: 4,
  judge: 4,
  signals: 4,
  routing: 3,
  upstream: 3,
  traces: 2,
  access: 1,
  core: 0,
};
/** Folders of one layer that work together (the request's follow-ups start from the pipeline and record through it). */
const PEERS = [new Set(['pipeline', 'judge', 'signals'])];

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The top folder of a path under src (or the file's name for a file at the top). */
function area(path: string): string {
  return relative(SRC, path).split(/[\\/]/)[0] as string;
}

/** Relative import specifiers: static, re-exports and dynamic. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(m[1] as string);
  return found;
}

function violations(files: readonly string[], read: (file: string) => string): string[] {
  const out: string[] = [];
  for (const file of files) {
    const from = area(file);
    for (const spec of importsOf(read(file))) {
      const to = area(resolve(dirname(file), spec));
      if (to === from) continue;
      const fromLayer = LAYERS[from];
      const toLayer = LAYERS[to];
      const where = `${relative(SRC, file)} imports ${spec}`;
      if (fromLayer === undefined || toLayer === undefined) {
        out.push(`${where}: ${fromLayer === undefined ? from : to} has no layer (add it to LAYERS)`);
      } else if (toLayer > fromLayer || (toLayer === fromLayer && !PEERS.some((p) => p.has(from) && p.has(to)))) {
        out.push(`${where}: ${from} (layer ${fromLayer}) may not depend on ${to} (layer ${toLayer})`);
      }
    }
  }
  return out;
}

describe('the direction of dependencies in src/', () => {
  it('has no import against the layers', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(50);
    expect(violations(files, (f) => readFileSync(f, 'utf8'))).toEqual([]);
  });

  it('names an import against the layers, and an unknown folder', () => {
    const fake = (name: string) => join(SRC, name);
    const files = [fake('routing/a.ts'), fake('routing/b.ts'), fake('upstream/c.ts'), fake('core/d.ts'), fake('pipeline/e.ts'), fake('newfolder/f.ts')];
    const text: Record<string, string> = {
      [files[0]!]: "import { x } from '../http/app.js';\nimport { y } from './b.js';",
      [files[1]!]: "import type { Z } from '../upstream/c.js';",
      [files[2]!]: "const m = await import('../core/d.js');",
      [files[3]!]: "export { w } from '../traces/types.js';",
      [files[4]!]: "import { j } from '../judge/judge.js';",
      [files[5]!]: "import { k } from '../core/d.js';",
    };
    expect(violations(files, (f) => text[f] as string)).toEqual([
      'routing/a.ts imports ../http/app.js: routing (layer 3) may not depend on http (layer 6)',
      'routing/b.ts imports ../upstream/c.js: routing (layer 3) may not depend on upstream (layer 3)',
      'core/d.ts imports ../traces/types.js: core (layer 0) may not depend on traces (layer 2)',
      'newfolder/f.ts imports ../core/d.js: newfolder has no layer (add it to LAYERS)',
    ]);
  });
});
