/**
 * The fused attention kernels (attentionForward / attentionBackward):
 * - the plain-TS twin (f64) against an explicit definition: every score with its mask, the library softmax, P·V;
 * - its backward against central finite differences (f64);
 * - the wasm builds (f32, 1 and 3 threads) against the f64 twin within a derived forward-error bound;
 * - bit-identical results for 1, 2 and 3 threads, and the errors of bad calls.
 * Operands are random strided views: head-major, token-major, shared by the heads (sh = 0), with leading offsets.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, ShapeError } from '../../src/errors.js';
import { jsKernels } from '../../src/kernels/js.js';
import type { AttentionGrads, AttentionInputs, AttentionShape, AttnOperand, Kernels } from '../../src/kernels/kernels.js';
import { loadWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import type { FloatArray } from '../../src/tensor.js';
import { expectWithin, TestRng, U32 } from './bounds.js';

type Layout = 'head' | 'token' | 'shared';

interface Case {
  shape: AttentionShape;
  layouts: { q: Layout; k1: Layout; k2: Layout; v: Layout };
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    H: fc.integer({ min: 1, max: 3 }),
    S: fc.integer({ min: 1, max: 9 }),
    extraT: fc.integer({ min: 0, max: 70 }),
    d1: fc.integer({ min: 1, max: 13 }),
    d2: fc.integer({ min: 0, max: 9 }),
    dv: fc.integer({ min: 1, max: 19 }),
    offset: fc.integer({ min: 0, max: 80 }),
    q: fc.constantFrom<Layout>('head', 'token'),
    // grouped: keys and values all shared by the heads (the absorbed path); else k2 alone may be shared (naive)
    grouped: fc.boolean(),
    k: fc.constantFrom<Layout>('head', 'token'),
    k2shared: fc.boolean(),
    seed: fc.nat(1 << 20),
  })
  .map((r) => ({
    shape: { B: r.B, H: r.H, S: r.S, T: r.S + r.extraT, d1: r.d1, d2: r.d2, dv: r.dv, tau: 0.37, offset: r.offset },
    layouts: r.grouped ? { q: r.q, k1: 'shared', k2: 'shared', v: 'shared' } : { q: r.q, k1: r.k, k2: r.k2shared ? 'shared' : r.k, v: r.k },
    seed: r.seed,
  }));

/**
 * Few query rows over many keys: the wasm forward splits the keys into chunks of 256 (flash-decoding) when a unit has
 * ≤ 64 query rows and T ≥ 512, and merges the chunks; decode with a long cache takes this path.
 */
const longCaseArb: fc.Arbitrary<Case> = fc
  .record({ base: caseArb, S: fc.integer({ min: 1, max: 4 }), T: fc.integer({ min: 500, max: 1100 }), offset: fc.integer({ min: 0, max: 1100 }) })
  .map(({ base, S, T, offset }) => ({ ...base, shape: { ...base.shape, S, T, offset } }));

/** Many query rows per unit: the wasm forward runs each range of 64 rows as a work item (rows are independent). */
const tallCaseArb: fc.Arbitrary<Case> = fc
  .record({ base: caseArb, S: fc.integer({ min: 40, max: 140 }), extraT: fc.integer({ min: 0, max: 20 }) })
  .map(({ base, S, extraT }) => ({ ...base, shape: { ...base.shape, B: 1, S, T: S + extraT } }));

/** A [B, H, rows, width] operand in the given layout, after a few elements of padding, filled by `fill`. */
function operand(layout: Layout, B: number, H: number, rows: number, width: number, fill: (n: number) => Float32Array, pad: number): AttnOperand<Float32Array> {
  const heads = layout === 'shared' ? 1 : H;
  const data = fill(pad + B * heads * rows * width);
  if (layout === 'head') return { data, off: pad, sb: H * rows * width, sh: rows * width, ss: width };
  if (layout === 'token') return { data, off: pad, sb: rows * H * width, sh: width, ss: H * width };
  return { data, off: pad, sb: rows * width, sh: 0, ss: width };
}

function inputs(c: Case): AttentionInputs<Float32Array> {
  const { B, H, S, T, d1, d2, dv } = c.shape;
  const rng = new TestRng(c.seed);
  const fill = (n: number) => rng.f32(n, -2, 2);
  return {
    q1: operand(c.layouts.q, B, H, S, d1, fill, 1),
    q2: operand(c.layouts.q, B, H, S, d2, fill, 2),
    k1: operand(c.layouts.k1, B, H, T, d1, fill, 0),
    k2: operand(c.layouts.k2, B, H, T, d2, fill, 3),
    v: operand(c.layouts.v, B, H, T, dv, fill, 1),
  };
}

/** Zeroed outputs shaped like the inputs: head-major rows, key gradients per head unless the keys are grouped. */
function outputsOf(c: Case, make: (n: number) => FloatArray) {
  const { B, H, S, T, d1, d2, dv } = c.shape;
  const hm = (rows: number, w: number, layout: Layout = 'head') => {
    const heads = layout === 'shared' ? 1 : H;
    const data = make(B * heads * rows * w);
    return layout === 'shared' ? { data, off: 0, sb: rows * w, sh: 0, ss: w } : { data, off: 0, sb: H * rows * w, sh: rows * w, ss: w };
  };
  const grouped = c.layouts.v === 'shared';
  const key = grouped ? 'shared' : 'head';
  return {
    o: hm(S, dv),
    stats: make(2 * B * H * S),
    grads: { q1: hm(S, d1), q2: hm(S, d2), k1: hm(T, d1, key), k2: hm(T, d2, key), v: hm(T, dv, key) } as AttentionGrads,
  };
}

const toF64 = (x: AttnOperand): AttnOperand<Float64Array> => ({ ...x, data: Float64Array.from(x.data) });
function inputsF64(x: AttentionInputs): AttentionInputs<Float64Array> {
  return { q1: toF64(x.q1), q2: toF64(x.q2), k1: toF64(x.k1), k2: toF64(x.k2), v: toF64(x.v) };
}
const ix = (x: AttnOperand, b: number, h: number, i: number) => x.off + b * x.sb + h * x.sh + i * x.ss;

/** The definition: every score τ·(q1·k1 + q2·k2) or −∞ where masked, softmax by the library kernel, then P·V (f64). */
function explicitForward(shape: AttentionShape, x: AttentionInputs<Float64Array>): { o: Float64Array; m: Float64Array; l: Float64Array } {
  const { B, H, S, T, d1, d2, dv, tau, offset } = shape;
  const o = new Float64Array(B * H * S * dv);
  const m = new Float64Array(B * H * S);
  const l = new Float64Array(B * H * S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const a = new Float64Array(T);
        for (let t = 0; t < T; t++) {
          let dot = 0;
          for (let j = 0; j < d1; j++) dot += x.q1.data[ix(x.q1, b, h, s) + j]! * x.k1.data[ix(x.k1, b, h, t) + j]!;
          let dot2 = 0;
          for (let j = 0; j < d2; j++) dot2 += x.q2.data[ix(x.q2, b, h, s) + j]! * x.k2.data[ix(x.k2, b, h, t) + j]!;
          a[t] = t <= s + offset ? tau * (dot + dot2) : -Infinity;
        }
        const r = (b * H + h) * S + s;
        m[r] = Math.max(...a);
        l[r] = a.reduce((acc, v) => acc + Math.exp(v - m[r]!), 0);
        const p = new Float64Array(T);
        jsKernels.softmaxForward(a, p, 1, T);
        for (let t = 0; t < T; t++) for (let j = 0; j < dv; j++) o[r * dv + j] = o[r * dv + j]! + p[t]! * x.v.data[ix(x.v, b, h, t) + j]!;
      }
    }
  }
  return { o, m, l };
}

const SEED = 1109;

describe('fused attention: the plain-TS twin', () => {
  it('equals the explicit definition (f64, 1e-13 of the value scale)', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const x = inputsF64(inputs(c));
        const { o, stats } = outputsOf(c, (n) => new Float64Array(n));
        jsKernels.attentionForward(c.shape, x, o as AttnOperand<Float64Array>, stats as Float64Array);
        const ref = explicitForward(c.shape, x);
        // both sum ≤ 80 products of doubles in different orders: ~1e-14 of the values' scale (|v| ≤ 2)
        expectWithin(o.data, ref.o, () => 1e-13, 'o');
        const { B, H, S } = c.shape;
        for (let r = 0; r < B * H * S; r++) {
          expect(stats[2 * r]).toBe(ref.m[r]); // the same scores, the same max
          expect(Math.abs(stats[2 * r + 1]! - ref.l[r]!)).toBeLessThanOrEqual(1e-13 * ref.l[r]!);
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('has the gradient of Σ G∘o (central differences, f64)', () => {
    fc.assert(
      fc.property(caseArb, fc.nat(1000), (c, pick) => {
        const x = inputsF64(inputs(c));
        const { o, stats, grads } = outputsOf(c, (n) => new Float64Array(n));
        const g = new TestRng(c.seed + 7);
        const G = { ...o, data: Float64Array.from(g.f32(o.data.length, -1, 1)) };
        const loss = (): number => {
          const oo = { ...o, data: new Float64Array(o.data.length) };
          jsKernels.attentionForward(c.shape, x, oo, new Float64Array(stats.length));
          return oo.data.reduce((acc, v, i) => acc + v * G.data[i]!, 0);
        };
        jsKernels.attentionForward(c.shape, x, o as AttnOperand<Float64Array>, stats as Float64Array);
        jsKernels.attentionBackward(c.shape, x, o as AttnOperand<Float64Array>, stats as Float64Array, G, grads as AttentionGrads<Float64Array>);
        const names = (['q1', 'q2', 'k1', 'k2', 'v'] as const).filter((k) => x[k].data.length > x[k].off + 0 && (k !== 'q2' && k !== 'k2' ? true : c.shape.d2 > 0));
        for (const name of names) {
          // a random element of the operand's data (padding and rows outside the call have gradient 0)
          const data = x[name].data;
          const i = pick % data.length;
          const keep = data[i]!;
          const h = 1e-5;
          data[i] = keep + h;
          const up = loss();
          data[i] = keep - h;
          const down = loss();
          data[i] = keep;
          const fd = (up - down) / (2 * h);
          const gi = gradientAt(c, grads, name, x[name], i);
          // O(h²) truncation (≈1e-10 here) and 1e-16/h rounding: 1e-7 absolute on gradients of order 1
          expect(Math.abs(gi - fd)).toBeLessThanOrEqual(1e-7 * (1 + Math.abs(fd)));
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });
});

/**
 * The gradient entry of data element i of input `name`: inputs and gradients share (b, h, row, j) coordinates but
 * not layouts, so map i to its coordinates (an element read under several heads, sh = 0, sums their gradients).
 */
function gradientAt(c: Case, grads: AttentionGrads, name: keyof AttentionInputs, x: AttnOperand, i: number): number {
  const { B, H, S, T, d1, d2, dv } = c.shape;
  const rows = name.startsWith('q') ? S : T;
  const width = name === 'v' ? dv : name.endsWith('1') ? d1 : d2;
  const g = grads[name];
  let sum = 0;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < rows; r++) {
        const j = i - ix(x, b, h, r);
        if (j < 0 || j >= width) continue;
        // a shared gradient (sh = 0) holds the sum over heads once: count it for head 0 only
        if (g.sh === 0 && h > 0) continue;
        sum += g.data[ix(g, b, h, r) + j]!;
      }
    }
  }
  return sum;
}

describe('fused attention: the wasm kernels', () => {
  const impls: WasmKernels[] = [];
  beforeAll(async () => {
    impls.push(await loadWasmKernels({ variant: 'simd' }));
    impls.push(await loadWasmKernels({ variant: 'relaxed-simd' }).catch(() => loadWasmKernels({ variant: 'simd', threads: 3 })));
    impls.push(await loadWasmKernels({ variant: 'simd', threads: 3 }));
  });
  afterAll(() => impls.forEach((k) => k.close()));

  for (const [label, arb, runs] of [['', caseArb, 60], [', split into key chunks (T ≥ 512, few rows)', longCaseArb, 25], [', split into row ranges (> 64 rows per unit)', tallCaseArb, 15]] as const) it(`forward: within the f32 error bound of the f64 twin${label}`, () => {
    fc.assert(
      fc.property(arb, (c) => {
        const x = inputs(c);
        const x64 = inputsF64(x);
        const ref = outputsOf(c, (n) => new Float64Array(n));
        jsKernels.attentionForward(c.shape, x64, ref.o as AttnOperand<Float64Array>, ref.stats as Float64Array);
        // Σ_t p_t·|v_t| per output element: the same softmax weights applied to |v|
        const mag = outputsOf(c, (n) => new Float64Array(n));
        const absV = { ...x64.v, data: x64.v.data.map(Math.abs) };
        jsKernels.attentionForward(c.shape, { ...x64, v: absV }, mag.o as AttnOperand<Float64Array>, mag.stats as Float64Array);
        const delta = scoreErrorBound(c, x64);
        const { S, T, dv } = c.shape;
        for (const K of impls) {
          const got = outputsOf(c, (n) => new Float32Array(n));
          K.attentionForward(c.shape, x, got.o as AttnOperand<Float32Array>, got.stats as Float32Array);
          // a score error δ moves each p_t by ≤ 2δ·p_t; exp (1 ulp), the per-block rescales (T/64 + 1 of 2 roundings),
          // the f64 sum l, the division and the length-T sum of P·V add ≤ (T + 16)·u relative to Σ p|v|
          // (the chunk merge adds one more rescale per chunk, inside the (T + 16)·u)
          expectWithin(got.o.data, ref.o.data, (i) => (2 * delta[Math.floor(i / dv)]! + (T + 16) * U32) * mag.o.data[i]! + 1e-30, `${K.name}/${K.threads} o S=${S} T=${T}`);
        }
      }),
      { seed: SEED, numRuns: runs },
    );
  });

  it('backward: within 64·(d1 + d2 + dv + S + T)·u of the f64 twin, normwise per gradient', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const x = inputs(c);
        const x64 = inputsF64(x);
        const ref = outputsOf(c, (n) => new Float64Array(n));
        const dO = operand('token', c.shape.B, c.shape.H, c.shape.S, c.shape.dv, (n) => new TestRng(c.seed + 3).f32(n), 0);
        jsKernels.attentionForward(c.shape, x64, ref.o as AttnOperand<Float64Array>, ref.stats as Float64Array);
        jsKernels.attentionBackward(c.shape, x64, ref.o as AttnOperand<Float64Array>, ref.stats as Float64Array, toF64(dO), ref.grads as AttentionGrads<Float64Array>);
        const { S, T, d1, d2, dv } = c.shape;
        for (const K of impls) {
          const got = outputsOf(c, (n) => new Float32Array(n));
          K.attentionForward(c.shape, x, got.o as AttnOperand<Float32Array>, got.stats as Float32Array);
          K.attentionBackward(c.shape, x, got.o as AttnOperand<Float32Array>, got.stats as Float32Array, dO, got.grads as AttentionGrads<Float32Array>);
          for (const name of ['q1', 'q2', 'k1', 'k2', 'v'] as const) {
            const r = ref.grads[name].data;
            let scale = 0;
            for (const v of r) scale = Math.max(scale, Math.abs(v));
            // every gradient is a sum of ≤ S·T products of the forward's quantities (errors ≤ (d + T)·u relative
            // each) and dO: a normwise bound with a constant for exp, the division and the (dP − D) difference
            expectWithin(got.grads[name].data, r, () => 64 * (d1 + d2 + dv + S + T) * U32 * scale + 1e-30, `${K.name}/${K.threads} d${name}`);
          }
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('gives bit-identical results for 1, 2 and 3 threads (forward and backward; key chunks and row ranges too)', async () => {
    const pools = [await loadWasmKernels({ variant: 'simd', threads: 1 }), await loadWasmKernels({ variant: 'simd', threads: 2 }), await loadWasmKernels({ variant: 'simd', threads: 3 })];
    try {
      fc.assert(
        fc.property(fc.oneof(caseArb, longCaseArb, tallCaseArb), (c) => {
          const x = inputs(c);
          const dO = operand('head', c.shape.B, c.shape.H, c.shape.S, c.shape.dv, (n) => new TestRng(c.seed + 5).f32(n), 0);
          const runs = pools.map((K) => {
            const r = outputsOf(c, (n) => new Float32Array(n));
            K.attentionForward(c.shape, x, r.o as AttnOperand<Float32Array>, r.stats as Float32Array);
            K.attentionBackward(c.shape, x, r.o as AttnOperand<Float32Array>, r.stats as Float32Array, dO, r.grads as AttentionGrads<Float32Array>);
            return [r.o.data, r.stats, ...Object.values(r.grads).map((g) => g.data)].map((a) => Array.from(new Uint32Array((a as Float32Array).buffer)));
          });
          expect(runs[1]).toEqual(runs[0]);
          expect(runs[2]).toEqual(runs[0]);
        }),
        { seed: SEED, numRuns: 25 },
      );
    } finally {
      pools.forEach((K) => K.close());
    }
  });
});

/**
 * Per query row, a bound on the f32 error of its scaled scores: a length-(d1 + d2) dot product in any order
 * (γ bound: (d + 2)·u·Σ|q||k|), times τ, plus the rounding of that product (u·|a|).
 */
function scoreErrorBound(c: Case, x: AttentionInputs<Float64Array>): Float64Array {
  const { B, H, S, T, d1, d2, tau } = c.shape;
  const out = new Float64Array(B * H * S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        let worst = 0;
        for (let t = 0; t < T; t++) {
          let mag = 0;
          for (let j = 0; j < d1; j++) mag += Math.abs(x.q1.data[ix(x.q1, b, h, s) + j]! * x.k1.data[ix(x.k1, b, h, t) + j]!);
          for (let j = 0; j < d2; j++) mag += Math.abs(x.q2.data[ix(x.q2, b, h, s) + j]! * x.k2.data[ix(x.k2, b, h, t) + j]!);
          worst = Math.max(worst, mag);
        }
        out[(b * H + h) * S + s] = (d1 + d2 + 3) * U32 * tau * worst;
      }
    }
  }
  return out;
}

describe('fused attention: bad calls', () => {
  const c: Case = { shape: { B: 1, H: 2, S: 3, T: 4, d1: 2, d2: 2, dv: 2, tau: 1, offset: 0 }, layouts: { q: 'head', k1: 'head', k2: 'shared', v: 'head' }, seed: 1 };
  for (const [name, K] of [['js', jsKernels]] as [string, Kernels][]) {
    it(`are rejected with the reason (${name})`, () => {
      const x = inputs(c);
      const { o, stats, grads } = outputsOf(c, (n) => new Float32Array(n));
      expect(() => K.attentionForward({ ...c.shape, offset: -1 }, x, o, stats)).toThrow(InputError);
      expect(() => K.attentionForward({ ...c.shape, T: 9 }, x, o, stats)).toThrow(/'k1' reaches index/);
      expect(() => K.attentionForward(c.shape, x, { ...o, sh: 0 }, stats)).toThrow(ShapeError);
      expect(() => K.attentionForward(c.shape, x, o, new Float32Array(3))).toThrow(/'stats' has 3 elements/);
      // k1 and v are per head, so a dk2 shared by the heads would be written by two units
      const dO = o;
      K.attentionForward(c.shape, x, o, stats);
      expect(() => K.attentionBackward(c.shape, x, o, stats, dO, { ...grads, k2: { ...grads.k2, sh: 0 } })).toThrow(/'dk2' has a zero stride/);
    });
  }
  it('are rejected by the wasm kernels too', async () => {
    const K = await loadWasmKernels({ variant: 'simd' });
    const x = inputs(c);
    const { o, stats } = outputsOf(c, (n) => new Float32Array(n));
    expect(() => K.attentionForward({ ...c.shape, offset: -1 }, x, o as AttnOperand<Float32Array>, stats as Float32Array)).toThrow(InputError);
    expect(() => K.attentionForward({ ...c.shape, d1: 20000, T: 1, S: 1 }, x, o as AttnOperand<Float32Array>, stats as Float32Array)).toThrow(ShapeError);
  });
});
