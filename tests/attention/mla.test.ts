import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mlaForward, type AttnImpl } from '../../src/model/attention.js';
import { createKVCache, LatentKVCache, NaiveKVCache } from '../../src/model/kv_cache.js';
import { buildRopeTables } from '../../src/model/rope.js';
import { InputError } from '../../src/errors.js';
import type { DType, FloatArray } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { randomArray } from '../helpers/random.js';
import { mlaConfig, randomMLAWeights, relMaxDiff, type MLAShape } from './helpers.js';

/** Random small MLA shapes, with and without q LoRA, with and without YaRN. */
const shapeArb: fc.Arbitrary<MLAShape> = fc.record({
  hidden: fc.integer({ min: 4, max: 24 }),
  heads: fc.integer({ min: 1, max: 4 }),
  qLoraRank: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 16 })),
  kvLoraRank: fc.integer({ min: 2, max: 16 }),
  nope: fc.integer({ min: 1, max: 8 }),
  rope: fc.integer({ min: 1, max: 4 }).map((h) => 2 * h),
  v: fc.integer({ min: 1, max: 8 }),
  yarn: fc.option(
    fc.record({
      factor: fc.double({ min: 1, max: 40, noNaN: true }),
      originalMaxPositionEmbeddings: fc.integer({ min: 8, max: 4096 }),
      betaFast: fc.constant(32),
      betaSlow: fc.constant(1),
      mscale: fc.constant(1),
      mscaleAllDim: fc.double({ min: 0.5, max: 1, noNaN: true }),
    }),
    { nil: null },
  ),
});

function run(shape: MLAShape, seed: number, dtype: DType, B: number, S: number, attn: AttnImpl, startPos = 0): FloatArray {
  const config = mlaConfig(shape);
  const w = randomMLAWeights(config, seed, dtype);
  const x = randomArray(B * S * config.hiddenSize, seed + 1, dtype);
  return mlaForward(config, w, x, B, S, { startPos, rope: buildRopeTables(config, startPos + S, dtype), attn }).out;
}

describe('MLA forward: naive vs absorbed', () => {
  it('agree in f64 to ~1e-12 on random configs', () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 5 }), fc.nat(1000), (shape, B, S, start, seed) => {
        const a = run(shape, seed, 'float64', B, S, 'naive', start);
        const b = run(shape, seed, 'float64', B, S, 'absorb', start);
        // same function, different association of the sums: f64 rounding only
        expect(relMaxDiff(b, a)).toBeLessThan(1e-12);
      }),
      { seed: 101, numRuns: 60 },
    );
  });

  it('agree in f32 to 1e-5 of max|out|', () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.nat(1000), (shape, B, S, seed) => {
        const a = run(shape, seed, 'float32', B, S, 'naive');
        const b = run(shape, seed, 'float32', B, S, 'absorb');
        // each intermediate is rounded to f32 (2^-24 relative) through ~6 chained products; the
        // golden README measures 4–6e-7 naive vs absorb on logits; 1e-5 leaves room for cancellation
        expect(relMaxDiff(b, a)).toBeLessThan(1e-5);
      }),
      { seed: 102, numRuns: 60 },
    );
  });
});

describe('MLA forward with a KV cache', () => {
  for (const attn of ['naive', 'absorb'] as const) {
    it(`${attn}: chunked prefill in random pieces == one full forward (f64)`, () => {
      fc.assert(
        fc.property(
          shapeArb,
          fc.integer({ min: 1, max: 3 }),
          fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }),
          fc.nat(1000),
          (shape, B, chunks, seed) => {
            const config = mlaConfig(shape);
            const d = config.hiddenSize;
            const T = chunks.reduce((a, b) => a + b, 0);
            const w = randomMLAWeights(config, seed, 'float64');
            const x = randomArray(B * T * d, seed + 1, 'float64') as Float64Array;
            const rope = buildRopeTables(config, T, 'float64');
            const full = mlaForward(config, w, x, B, T, { startPos: 0, rope, attn }).out;
            const cache = createKVCache(config, attn, B, T + 2, 'float64');
            const got = new Float64Array(B * T * d);
            let p = 0;
            for (const c of chunks) {
              const xc = new Float64Array(B * c * d);
              for (let b = 0; b < B; b++) xc.set(x.subarray((b * T + p) * d, (b * T + p + c) * d), b * c * d);
              const { out } = mlaForward(config, w, xc, B, c, { startPos: p, rope, attn, cache });
              for (let b = 0; b < B; b++) got.set(out.subarray(b * c * d, (b + 1) * c * d), (b * T + p) * d);
              p += c;
              expect(cache.length).toBe(p);
            }
            // f64, same arithmetic up to summation order over the key axis
            expectClose(got, full, 'chunked vs full', { atolOfMax: 1e-12 });
          },
        ),
        { seed: 103, numRuns: 40 },
      );
    });

    it(`${attn}: prefill then 1-token decode == full forward, and truncate() rolls back`, () => {
      const shape: MLAShape = { hidden: 16, heads: 3, qLoraRank: 8, kvLoraRank: 6, nope: 4, rope: 4, v: 5 };
      const config = mlaConfig(shape);
      const B = 2;
      const T = 9;
      const P = 4;
      const d = config.hiddenSize;
      const w = randomMLAWeights(config, 7, 'float64');
      const x = randomArray(B * T * d, 8, 'float64') as Float64Array;
      const rope = buildRopeTables(config, T, 'float64');
      const full = mlaForward(config, w, x, B, T, { startPos: 0, rope, attn }).out;
      const cache = createKVCache(config, attn, B, T, 'float64');
      const rows = (t0: number, n: number) => {
        const r = new Float64Array(B * n * d);
        for (let b = 0; b < B; b++) r.set(x.subarray((b * T + t0) * d, (b * T + t0 + n) * d), b * n * d);
        return r;
      };
      mlaForward(config, w, rows(0, P), B, P, { startPos: 0, rope, attn, cache });
      // a wrong token at position P, then rolled back (speculative rejection)
      mlaForward(config, w, randomArray(B * d, 99, 'float64'), B, 1, { startPos: P, rope, attn, cache });
      cache.truncate(P);
      for (let t = P; t < T; t++) {
        const { out } = mlaForward(config, w, rows(t, 1), B, 1, { startPos: t, rope, attn, cache });
        for (let b = 0; b < B; b++) {
          expectClose(out.subarray(b * d, (b + 1) * d), full.subarray((b * T + t) * d, (b * T + t + 1) * d), `decode t=${t} b=${b}`, { atolOfMax: 1e-12 });
        }
      }
      expect(cache.length).toBe(T);
    });
  }

  it('rejects a cache of the other path, holes, overflow and save with a cache', () => {
    const config = mlaConfig({ hidden: 8, heads: 2, qLoraRank: 0, kvLoraRank: 4, nope: 2, rope: 2, v: 3 });
    const w = randomMLAWeights(config, 1, 'float64');
    const x = randomArray(8, 2, 'float64');
    const rope = buildRopeTables(config, 16, 'float64');
    const naive = createKVCache(config, 'naive', 1, 4, 'float64');
    expect(naive).toBeInstanceOf(NaiveKVCache);
    expect(createKVCache(config, 'absorb', 1, 4, 'float64')).toBeInstanceOf(LatentKVCache);
    expect(() => mlaForward(config, w, x, 1, 1, { startPos: 0, rope, attn: 'absorb', cache: naive })).toThrow(InputError);
    expect(() => mlaForward(config, w, x, 1, 1, { startPos: 1, rope, attn: 'naive', cache: naive })).toThrow(/contiguously/);
    expect(() => mlaForward(config, w, x, 1, 1, { startPos: 0, rope, attn: 'naive', cache: naive, save: true })).toThrow(InputError);
    for (let t = 0; t < 4; t++) mlaForward(config, w, x, 1, 1, { startPos: t, rope, attn: 'naive', cache: naive });
    expect(() => mlaForward(config, w, x, 1, 1, { startPos: 4, rope, attn: 'naive', cache: naive })).toThrow(/capacity/);
    expect(() => naive.truncate(5)).toThrow(InputError);
    expect(() => mlaForward(config, w, x, 1, 1, { startPos: 16, rope, attn: 'naive' })).toThrow(/RoPE tables/);
  });
});

describe('MLA forward: causality', () => {
  for (const attn of ['naive', 'absorb'] as const) {
    it(`${attn}: the output at s does not depend on tokens after s`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer({ min: 2, max: 7 }), fc.nat(1000), fc.integer({ min: 0, max: 3 }), (shape, S, seed, start) => {
          const config = mlaConfig(shape);
          const d = config.hiddenSize;
          const cut = seed % S; // tokens > cut are replaced
          const w = randomMLAWeights(config, seed, 'float64');
          const x1 = randomArray(S * d, seed + 1, 'float64');
          const x2 = x1.slice();
          x2.set(randomArray((S - cut - 1) * d, seed + 2, 'float64'), (cut + 1) * d);
          const rope = buildRopeTables(config, start + S, 'float64');
          const o1 = mlaForward(config, w, x1, 1, S, { startPos: start, rope, attn }).out;
          const o2 = mlaForward(config, w, x2, 1, S, { startPos: start, rope, attn }).out;
          // the prefix is bit-identical: masked keys get probability exactly 0
          expect(Array.from(o2.subarray(0, (cut + 1) * d))).toEqual(Array.from(o1.subarray(0, (cut + 1) * d)));
          if (cut + 1 < S) expect(relMaxDiff(o2.subarray((cut + 1) * d), o1.subarray((cut + 1) * d))).toBeGreaterThan(1e-6);
        }),
        { seed: 104, numRuns: 40 },
      );
    });
  }
});
