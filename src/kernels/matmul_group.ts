/**
 * `matmulGroup`: the check both backends run (no product writes what another reads or writes, which would make the
 * result depend on their order or on threads) and the plain-TS definition (the products in order).
 */
import { ShapeError } from '../errors.js';
import type { FloatArray } from '../tensor.js';
import type { MatmulItem } from './kernels.js';

interface Span {
  buffer: ArrayBufferLike;
  lo: number;
  hi: number;
}

const span = (x: FloatArray, n: number): Span => ({ buffer: x.buffer, lo: x.byteOffset, hi: x.byteOffset + n * x.BYTES_PER_ELEMENT });
const overlap = (p: Span, q: Span): boolean => p.buffer === q.buffer && p.lo < q.hi && q.lo < p.hi;

/** Throws a ShapeError naming the two products when one's output overlaps another's input or output. */
export function checkMatmulGroup(items: readonly MatmulItem[]): void {
  const outs = items.map((it) => span(it.c, it.m * it.n));
  const ins = items.map((it) => [span(it.a, it.m * it.k), span(it.b, it.k * it.n)]);
  for (let i = 0; i < items.length; i++) {
    for (let j = 0; j < items.length; j++) {
      if (i === j) continue;
      if ((j > i && overlap(outs[i]!, outs[j]!)) || ins[j]!.some((s) => overlap(outs[i]!, s))) {
        throw new ShapeError(`matmulGroup: product ${i}'s output overlaps product ${j}'s ${overlap(outs[i]!, outs[j]!) ? 'output' : 'input'}; the products must be independent`);
      }
    }
  }
}

/** The definition: each product in turn with `matmul`. */
export function matmulGroupWith<T extends FloatArray>(matmul: (layout: MatmulItem['layout'], a: T, b: T, c: T, m: number, n: number, k: number, accumulate?: boolean) => void, items: readonly MatmulItem<T>[]): void {
  checkMatmulGroup(items);
  for (const it of items) matmul(it.layout, it.a, it.b, it.c, it.m, it.n, it.k, it.accumulate ?? false);
}
