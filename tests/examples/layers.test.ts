/**
 * The folders are layers, and no module imports from a layer above its own (docs/architecture.md, "Layers"):
 *   base (errors, tensor, preview, random) → io, tokenizer → kernels → ops → model → train → verify → demo → cli
 * The entry points (index.ts, node.ts) may import anything. Every relative import under src/ is checked.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const RANK: Record<string, number> = {
  errors: 0,
  tensor: 0,
  preview: 0,
  random: 0,
  io: 1,
  tokenizer: 1,
  kernels: 2,
  ops: 3,
  model: 4,
  train: 5,
  verify: 6,
  demo: 7,
  cli: 8,
};
const ENTRIES = new Set(['index', 'node']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}
/** The layer of a file under src/: its top folder, or its name for a top-level file. */
const layerOf = (file: string): string => relative(SRC, file).split(sep)[0]!.replace(/\.(ts|js)$/, '');

test('no import points to a higher layer', () => {
  const upward: string[] = [];
  let checked = 0;
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (ENTRIES.has(from)) continue;
    expect(RANK[from], `${relative(SRC, file)}: folder '${from}' has no layer`).toBeDefined();
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const to = layerOf(normalize(join(file, '..', m[1]!)));
      expect(RANK[to], `${relative(SRC, file)} imports '${m[1]}' outside the layers`).toBeDefined();
      if (RANK[to]! > RANK[from]!) upward.push(`${relative(SRC, file)} → ${m[1]}`);
      checked++;
    }
  }
  expect(upward).toEqual([]);
  expect(checked).toBeGreaterThan(300);
});
