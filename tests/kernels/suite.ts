import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { jsKernels } from '../../src/kernels/js.js';
import type { Kernels, MatmulLayout } from '../../src/kernels/kernels.js';
import { absOf, expectWithin, f64, TestRng, U32 } from './bounds.js';

/**
 * The one kernel suite, instantiated for every implementation (js, wasm-simd, wasm-relaxed-simd).
 * Each kernel runs in f32 on the implementation under test and is compared with the js kernels
 * in f64 on the same (exactly converted) inputs: the f64 oracle. Tolerances are forward-error
 * bounds of the f32 computation; u = 2⁻²⁴. The js f32 kernels round a double result once, so
 * they meet every bound with room to spare; the wasm kernels accumulate in f32.
 */

const LAYOUTS: MatmulLayout[] = ['nn', 'nt', 'tn'];

/** Sizes of op(A) and B for a layout, in elements. */
function matmulSizes(m: number, n: number, k: number): { a: number; b: number; c: number } {
  return { a: m * k, b: k * n, c: m * n };
}

/**
 * Runs `impl` in f32 and the js oracle in f64 and checks the bound
 * |ĉ − c| ≤ (k + 2)·u·(Σ_p |a||b| + |c_old|): the classic γ_k bound of a length-k f32 dot
 * product in any summation order (blocked, FMA or not) plus the rounding of the accumulation.
 */
function checkMatmul(impl: Kernels, layout: MatmulLayout, m: number, n: number, k: number, accumulate: boolean, rng: TestRng, batch = 1, bStride?: number): void {
  const s = matmulSizes(m, n, k);
  const stride = bStride ?? s.b;
  const a = rng.f32(batch * s.a);
  const b = rng.f32(stride === 0 ? s.b : (batch - 1) * stride + s.b);
  const c0 = rng.f32(batch * s.c, -2, 2);
  const got = c0.slice();
  const ref = f64(c0);
  const mag = absOf(c0);
  if (batch === 1 && bStride === undefined) {
    impl.matmul(layout, a, b, got, m, n, k, accumulate);
    jsKernels.matmul(layout, f64(a), f64(b), ref, m, n, k, accumulate);
  } else {
    impl.matmulBatched(layout, a, b, got, batch, m, n, k, accumulate, stride);
    jsKernels.matmulBatched(layout, f64(a), f64(b), ref, batch, m, n, k, accumulate, stride);
  }
  if (!accumulate) mag.fill(0);
  jsKernels.matmulBatched(layout, absOf(a), absOf(b), mag, batch, m, n, k, true, stride);
  expectWithin(got, ref, (i) => (k + 2) * U32 * mag[i]! + 1e-38, `${impl.name} matmul ${layout} m=${m} n=${n} k=${k} acc=${accumulate} batch=${batch}`);
}

/** 1 ulp of an f32 value of magnitude |v| (normal: 2^(⌊log₂|v|⌋ − 23); subnormal and zero: 2⁻¹⁴⁹). */
function ulpF32(v: number): number {
  const a = Math.abs(v);
  if (a < 2 ** -126) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/**
 * exp kernel bound: |y − eˣ| ≤ 1 ulp of the exact eˣ (Math.exp in f64 stands for it, ~1e-16 relative), the bound
 * assembly/vmath.ts states (benchmarks/exp_ulp.mjs checks every f32 input). Where eˣ rounds beyond FLT_MAX the
 * result must be +∞; NaN in, NaN out.
 */
function checkExp(x: Float32Array, y: Float32Array, name: string): void {
  for (let i = 0; i < x.length; i++) {
    const e = Math.exp(x[i]!);
    if (Number.isNaN(e)) {
      if (!Number.isNaN(y[i]!)) throw new Error(`${name}: exp(${x[i]}) = ${y[i]}, expected NaN`);
      continue;
    }
    if (Math.fround(e) === Infinity) {
      if (y[i] !== Infinity) throw new Error(`${name}: exp(${x[i]}) = ${y[i]}, expected +Infinity`);
      continue;
    }
    const err = Math.abs(y[i]! - e);
    if (!(err <= ulpF32(e))) throw new Error(`${name}: exp(${x[i]}) = ${y[i]}, exact ${e}, error ${(err / ulpF32(e)).toFixed(3)} ulp > 1`);
  }
}

export function describeKernelSuite(load: () => Promise<Kernels>, expectedName: string): void {
  describe(`kernels: ${expectedName}`, () => {
    let K: Kernels;
    const impl = (): Kernels => K;

    it('loads and reports its name', async () => {
      K = await load();
      expect(K.name).toBe(expectedName);
    });

    it('matmul: every size 1..67 in m, n and k, all layouts, accumulate off and on', () => {
      const rng = new TestRng(67);
      for (let size = 1; size <= 67; size++) {
        for (const layout of LAYOUTS) {
          for (const acc of [false, true]) {
            const o1 = rng.int(1, 67);
            const o2 = rng.int(1, 67);
            checkMatmul(impl(), layout, size, o1, o2, acc, rng);
            checkMatmul(impl(), layout, o1, size, o2, acc, rng);
            checkMatmul(impl(), layout, o1, o2, size, acc, rng);
          }
        }
      }
    });

    it('matmul: random shapes (fast-check)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...LAYOUTS),
          fc.integer({ min: 1, max: 90 }),
          fc.integer({ min: 1, max: 90 }),
          fc.integer({ min: 0, max: 300 }),
          fc.boolean(),
          fc.integer(),
          (layout, m, n, k, acc, seed) => checkMatmul(impl(), layout, m, n, k, acc, new TestRng(seed)),
        ),
        { seed: 20240602, numRuns: 60 },
      );
    });

    it('matmul: shapes crossing every cache block (M > 128, N > 1024, K > 256)', () => {
      const rng = new TestRng(1);
      for (const layout of LAYOUTS) checkMatmul(impl(), layout, 133, 1029, 517, true, rng);
    });

    it('matmul: a row of C is bit-identical whatever M is (alone, in any group of rows)', () => {
      // Model code relies on this (a token's output must not depend on its batch): the wasm
      // kernels use an unpacked path for M < 4 and the tiled path otherwise, and both must do
      // the same arithmetic per element. No tolerance: the comparison is exact (Object.is).
      fc.assert(
        fc.property(
          fc.constantFrom(...LAYOUTS),
          fc.integer({ min: 4, max: 11 }),
          fc.constantFrom(1, 5, 8, 17, 37),
          fc.constantFrom(1, 7, 64, 300, 600),
          fc.boolean(),
          fc.integer({ min: 1, max: 5 }),
          fc.integer(),
          (layout, M, n, k, acc, group, seed) => {
            const rng = new TestRng(seed);
            const a = rng.f32(M * k);
            const b = rng.f32(k * n);
            const c0 = rng.f32(M * n, -2, 2);
            // rows r0..r0+m-1 of op(A) (op(A) is [K, M] for 'tn')
            const rowsOf = (r0: number, m: number): Float32Array => {
              const out = new Float32Array(m * k);
              for (let t = 0; t < m; t++) {
                for (let p = 0; p < k; p++) {
                  out[layout === 'tn' ? p * m + t : t * k + p] = layout === 'tn' ? a[p * M + r0 + t]! : a[(r0 + t) * k + p]!;
                }
              }
              return out;
            };
            const all = c0.slice();
            impl().matmul(layout, a, b, all, M, n, k, acc);
            for (let r0 = 0; r0 < M; r0 += group) {
              const m = Math.min(group, M - r0);
              const part = c0.slice(r0 * n, (r0 + m) * n);
              impl().matmul(layout, rowsOf(r0, m), b, part, m, n, k, acc);
              for (let i = 0; i < m * n; i++) {
                if (!Object.is(part[i], all[r0 * n + i])) {
                  throw new Error(`${impl().name} matmul ${layout} M=${M} n=${n} k=${k} acc=${acc}: row ${r0 + Math.floor(i / n)} differs in a group of ${m} rows`);
                }
              }
            }
          },
        ),
        { seed: 20240603, numRuns: 80 },
      );
    });

    it('matmulBatched: per-item B and broadcast B (bStride 0), accumulate off and on', () => {
      const rng = new TestRng(2);
      for (const layout of LAYOUTS) {
        for (const acc of [false, true]) {
          checkMatmul(impl(), layout, 5, 13, 9, acc, rng, 3);
          checkMatmul(impl(), layout, 7, 6, 11, acc, rng, 4, 0);
        }
      }
    });

    it('softmaxForward matches the f64 oracle; rows sum to 1; -Infinity gets 0', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 300 }), fc.integer(), (rows, cols, seed) => {
          const rng = new TestRng(seed);
          const x = rng.f32(rows * cols, -8, 8);
          if (cols > 1) x[rng.int(0, rows * cols - 1)] = -Infinity;
          const y = new Float32Array(rows * cols);
          impl().softmaxForward(x, y, rows, cols);
          const ref = new Float64Array(rows * cols);
          jsKernels.softmaxForward(f64(x), ref, rows, cols);
          // exp argument x − max has error u·16 (range 16); exp, sum-to-f32 and divide add a few u
          expectWithin(y, ref, (i) => (2 * 16 + 8) * U32 * ref[i]! + 1e-45, `${impl().name} softmax`);
          for (let r = 0; r < rows; r++) {
            let s = 0;
            for (let j = 0; j < cols; j++) s += y[r * cols + j]!;
            // each of cols entries is off by ≤ 40u relative, plus the final divide
            expect(Math.abs(s - 1)).toBeLessThanOrEqual(42 * U32);
          }
          for (let i = 0; i < x.length; i++) if (x[i] === -Infinity) expect(y[i]).toBe(0);
        }),
        { seed: 11, numRuns: 40 },
      );
    });

    it('softmaxForward is shift-invariant (exactly, when x + c is exact in f32) and y may alias x', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: -1000, max: 1000 }), fc.integer(), (cols, c, seed) => {
          const rng = new TestRng(seed);
          // values on a 2⁻¹⁰ grid below 2¹¹: x + c and x − max are exact in f32, so the outputs must be identical
          const x = Float32Array.from(rng.f32(cols, -8, 8), (v) => Math.round(v * 1024) / 1024);
          const shifted = Float32Array.from(x, (v) => v + c);
          const y = new Float32Array(cols);
          impl().softmaxForward(x, y, 1, cols);
          impl().softmaxForward(shifted, shifted, 1, cols); // in place
          expect(Array.from(shifted)).toEqual(Array.from(y));
        }),
        { seed: 12, numRuns: 40 },
      );
    });

    it('softmaxForward throws InputError on a row of all -Infinity', () => {
      const x = new Float32Array([0, 1, -Infinity, -Infinity]);
      expect(() => impl().softmaxForward(x, new Float32Array(4), 2, 2)).toThrow(InputError);
      expect(() => impl().softmaxForward(x, new Float32Array(4), 2, 2)).toThrow(/row 1/);
    });

    it('softmaxBackward matches the f64 oracle (accumulating)', () => {
      const rng = new TestRng(3);
      for (const [rows, cols] of [[1, 1], [3, 7], [4, 67], [2, 300]] as const) {
        const x = rng.f32(rows * cols, -4, 4);
        const y = new Float32Array(rows * cols);
        jsKernels.softmaxForward(x, y, rows, cols);
        const dy = rng.f32(rows * cols);
        const dx0 = rng.f32(rows * cols);
        const got = dx0.slice();
        impl().softmaxBackward(y, dy, got, rows, cols);
        const ref = f64(dx0);
        jsKernels.softmaxBackward(f64(y), f64(dy), ref, rows, cols);
        // dot = Σ dy·y in f32: error ≤ γ_cols·S, S = Σ|dy·y| ≤ max|dy|=1; then three roundings
        expectWithin(got, ref, (i) => (cols + 4) * U32 * (Math.abs(y[i]!) * (Math.abs(dy[i]!) + 1) + Math.abs(dx0[i]!) + Math.abs(ref[i]!)), `${impl().name} softmaxBackward ${rows}x${cols}`);
      }
    });

    it('rmsnormForward / rmsnormBackward match the f64 oracle', () => {
      const rng = new TestRng(4);
      for (const [rows, cols] of [[1, 1], [3, 5], [2, 64], [5, 67], [2, 513]] as const) {
        const x = rng.f32(rows * cols, -3, 3);
        const w = rng.f32(cols, 0.5, 1.5);
        const y = new Float32Array(rows * cols);
        const rstd = new Float32Array(rows);
        impl().rmsnormForward(x, w, y, rstd, rows, cols, 1e-6);
        const yRef = new Float64Array(rows * cols);
        const rRef = new Float64Array(rows);
        jsKernels.rmsnormForward(f64(x), f64(w), yRef, rRef, rows, cols, 1e-6);
        // mean of squares in f32 has relative error ≤ γ_cols; sqrt halves it; divide, x·s and w·(x·s) add 4u
        expectWithin(rstd, rRef, (i) => (cols + 8) * U32 * rRef[i]!, `${impl().name} rmsnorm rstd`);
        expectWithin(y, yRef, (i) => (cols + 8) * U32 * Math.abs(yRef[i]!), `${impl().name} rmsnorm y`);

        const dy = rng.f32(rows * cols);
        const dx0 = rng.f32(rows * cols);
        const dw0 = rng.f32(cols);
        const dx = dx0.slice();
        const dw = dw0.slice();
        impl().rmsnormBackward(x, w, rstd, dy, dx, dw, rows, cols);
        const dxRef = f64(dx0);
        const dwRef = f64(dw0);
        jsKernels.rmsnormBackward(f64(x), f64(w), f64(rstd), f64(dy), dxRef, dwRef, rows, cols);
        // dx = dx0 + s·w·dy − (s³/cols)·x·Σ dy·w·x: the dot carries γ_cols of Σ|dy·w·x|; then ~6 roundings
        expectWithin(dx, dxRef, (i) => {
          const r = Math.floor(i / cols);
          const j = i % cols;
          const s = rstd[r]!;
          let sabs = 0;
          for (let q = 0; q < cols; q++) sabs += Math.abs(dy[r * cols + q]! * w[q]! * x[r * cols + q]!);
          return (cols + 8) * U32 * (Math.abs(dx0[i]!) + Math.abs(s * w[j]! * dy[i]!) + ((s * s * s) / cols) * Math.abs(x[i]!) * sabs);
        }, `${impl().name} rmsnorm dx`);
        // dw_j = dw0_j + Σ_r dy·x·s: a length-rows f32 sum of 3-factor products
        expectWithin(dw, dwRef, (j) => {
          let sabs = Math.abs(dw0[j]!);
          for (let r = 0; r < rows; r++) sabs += Math.abs(dy[r * cols + j]! * x[r * cols + j]! * rstd[r]!);
          return (rows + 4) * U32 * sabs;
        }, `${impl().name} rmsnorm dw`);
      }
    });

    it('swigluForward / swigluBackward match the f64 oracle', () => {
      const rng = new TestRng(5);
      for (const n of [1, 3, 4, 67, 1000]) {
        const a = rng.f32(n, -12, 12);
        const b = rng.f32(n, -2, 2);
        const y = new Float32Array(n);
        impl().swigluForward(a, b, y, n);
        const yRef = new Float64Array(n);
        jsKernels.swigluForward(f64(a), f64(b), yRef, n);
        // expf (≤ 1 ulp), 1 + e, 1/(…), and two products: ≤ 8 roundings, relative
        expectWithin(y, yRef, (i) => 8 * U32 * Math.abs(yRef[i]!) + 1e-38, `${impl().name} swiglu y`);

        const dy = rng.f32(n);
        const da0 = rng.f32(n);
        const db0 = rng.f32(n);
        const da = da0.slice();
        const db = db0.slice();
        impl().swigluBackward(a, b, dy, da, db, n);
        const daRef = f64(da0);
        const dbRef = f64(db0);
        jsKernels.swigluBackward(f64(a), f64(b), f64(dy), daRef, dbRef, n);
        // silu' = σ(1 + z(1−σ)) cancels near z ≈ −1.28, so the bound is absolute in |dy·b|·(1 + |z|)
        expectWithin(da, daRef, (i) => 12 * U32 * (Math.abs(dy[i]! * b[i]!) * (1 + Math.abs(a[i]!)) + Math.abs(da0[i]!)), `${impl().name} swiglu da`);
        expectWithin(db, dbRef, (i) => 10 * U32 * (Math.abs(dy[i]! * a[i]!) + Math.abs(db0[i]!)), `${impl().name} swiglu db`);
      }
    });

    it('rope forward and inverse match the f64 oracle; inverse undoes forward; y may alias x', () => {
      const rng = new TestRng(6);
      const half = 32;
      const maxPos = 50;
      const cos = new Float32Array(maxPos * half);
      const sin = new Float32Array(maxPos * half);
      for (let p = 0; p < maxPos; p++) {
        for (let i = 0; i < half; i++) {
          const theta = p * Math.pow(10000, -i / half);
          cos[p * half + i] = Math.cos(theta);
          sin[p * half + i] = Math.sin(theta);
        }
      }
      for (const [rows, dim] of [[1, 2], [3, 8], [7, 64]] as const) {
        const pos = Int32Array.from({ length: rows }, () => rng.int(0, maxPos - 1));
        const x = rng.f32(rows * dim);
        for (const inverse of [false, true]) {
          const y = new Float32Array(rows * dim);
          impl().rope(x, y, cos, sin, pos, rows, dim, inverse);
          const ref = new Float64Array(rows * dim);
          jsKernels.rope(f64(x), ref, f64(cos), f64(sin), pos, rows, dim, inverse);
          // x0·c − x1·s: two products and a sum, cos/sin identical inputs
          expectWithin(y, ref, (i) => {
            const p = i - (i % 2);
            return 3 * U32 * (Math.abs(x[p]!) + Math.abs(x[p + 1]!));
          }, `${impl().name} rope ${rows}x${dim} inverse=${inverse}`);
        }
        const back = new Float32Array(rows * dim);
        impl().rope(x, back, cos, sin, pos, rows, dim, false);
        impl().rope(back, back, cos, sin, pos, rows, dim, true);
        // rotation then inverse rotation: |c² + s² − 1| ≤ 2u for f32 tables, plus 6 roundings
        expectWithin(back, x, (i) => 10 * U32 * (Math.abs(x[i - (i % 2)]!) + Math.abs(x[i - (i % 2) + 1]!)), `${impl().name} rope round trip`);
      }
    });

    it('crossEntropyForward / crossEntropyBackward match the f64 oracle, with ignored rows', () => {
      const rng = new TestRng(7);
      const ignore = -100;
      for (const [rows, vocab] of [[1, 1], [4, 7], [6, 67], [3, 1000]] as const) {
        const logits = rng.f32(rows * vocab, -6, 6);
        const targets = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? ignore : rng.int(0, vocab - 1)));
        const losses = new Float32Array(rows).fill(7);
        const res = impl().crossEntropyForward(logits, targets, losses, rows, vocab, ignore);
        const lRef = new Float64Array(rows);
        const resRef = jsKernels.crossEntropyForward(f64(logits), targets, lRef, rows, vocab, ignore);
        expect(res.count).toBe(resRef.count);
        // lse from f32 exps of arguments with error ≤ 12u (range 12), a log, then two subtractions
        const tolLoss = (i: number): number => (2 * 12 + 8 + Math.abs(lRef[i]!)) * U32 * (1 + Math.log(vocab));
        expectWithin(losses, lRef, tolLoss, `${impl().name} cross-entropy losses`);
        for (let r = 0; r < rows; r++) if (targets[r] === ignore) expect(losses[r]).toBe(0);
        let tolSum = 0;
        for (let r = 0; r < rows; r++) tolSum += tolLoss(r) + U32 * Math.abs(lRef[r]!);
        expect(Math.abs(res.sum - resRef.sum)).toBeLessThanOrEqual(tolSum);

        const scale = 1 / 3;
        const d0 = rng.f32(rows * vocab);
        const d = d0.slice();
        impl().crossEntropyBackward(logits, targets, d, rows, vocab, ignore, scale);
        const dRef = f64(d0);
        jsKernels.crossEntropyBackward(f64(logits), targets, dRef, rows, vocab, ignore, scale);
        // p = exp(x − max − lse): argument error ≤ (2·12 + 2·|lse| + 8)u, then (p − 1[t])·scale + d0
        expectWithin(d, dRef, (i) => {
          const p = Math.abs(dRef[i]! - d0[i]!) / scale + 1;
          return (2 * 12 + 16 + 2 * Math.log(vocab) * 2) * U32 * (scale * p + Math.abs(d0[i]!) + Math.abs(dRef[i]!));
        }, `${impl().name} cross-entropy dlogits`);
        for (let r = 0; r < rows; r++) {
          if (targets[r] !== ignore) continue;
          for (let j = 0; j < vocab; j++) expect(d[r * vocab + j]).toBe(d0[r * vocab + j]);
        }
      }
    });

    it('cross-entropy throws InputError for a target outside the vocabulary', () => {
      const logits = new Float32Array(6);
      expect(() => impl().crossEntropyForward(logits, Int32Array.of(0, 3), new Float32Array(2), 2, 3, -100)).toThrow(InputError);
      expect(() => impl().crossEntropyBackward(logits, Int32Array.of(-1, 0), new Float32Array(6), 2, 3, -100, 1)).toThrow(/row 0/);
    });

    it('adamw matches the f64 oracle over several steps', () => {
      const rng = new TestRng(8);
      for (const n of [1, 5, 67, 1000]) {
        const param = rng.f32(n);
        const m = new Float32Array(n);
        const v = new Float32Array(n);
        const pRef = f64(param);
        const mRef = new Float64Array(n);
        const vRef = new Float64Array(n);
        for (let step = 1; step <= 3; step++) {
          const grad = rng.f32(n, -0.1, 0.1);
          const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step };
          const before = param.slice();
          const mBefore = m.slice();
          const vBefore = v.slice();
          impl().adamw(param, grad, m, v, n, hp);
          // one step from the SAME f32 state: a handful of roundings of each term
          const p1 = f64(before);
          const m1 = f64(mBefore);
          const v1 = f64(vBefore);
          jsKernels.adamw(p1, f64(grad), m1, v1, n, hp);
          expectWithin(m, m1, (i) => 4 * U32 * (Math.abs(mBefore[i]!) + Math.abs(grad[i]!)), `${impl().name} adamw m step ${step}`);
          expectWithin(v, v1, (i) => 4 * U32 * (Math.abs(vBefore[i]!) + grad[i]! * grad[i]!), `${impl().name} adamw v step ${step}`);
          // θ·decay − stepSize·m/denom: the update term carries ≈ 8 roundings (incl. sqrt, bias corrections)
          expectWithin(param, p1, (i) => 3 * U32 * Math.abs(before[i]!) + 12 * U32 * Math.abs(p1[i]! - before[i]! * (1 - hp.lr * hp.weightDecay)), `${impl().name} adamw param step ${step}`);
          jsKernels.adamw(pRef, f64(grad), mRef, vRef, n, hp);
        }
        // and the f32 trajectory stays within f32 noise of the f64 one
        expectWithin(param, pRef, (i) => 64 * U32 * Math.abs(pRef[i]!) + 1e-9, `${impl().name} adamw trajectory`);
      }
    });

    it('exp is within 1 ulp of the exact value over the whole f32 range (strided sweep, specials, aliasing)', () => {
      // every 4093rd bit pattern of all 2³² (≈ 1.05M inputs, both signs, every binade), then the specials
      const STRIDE = 4093;
      const n = Math.ceil(2 ** 32 / STRIDE);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = (i * STRIDE + 7) >>> 0;
      const x = new Float32Array(bits.buffer);
      const y = new Float32Array(n);
      impl().exp(x, y, n);
      checkExp(x, y, `${impl().name} exp sweep`);
      const special = Float32Array.of(0, -0, Infinity, -Infinity, NaN, 88.72283, 88.72284, 89, 1e30, -87.33655, -103.2789, -103.97, -104, -1e30, 1e-30, -1e-30);
      const ys = new Float32Array(special.length);
      impl().exp(special, ys, special.length);
      checkExp(special, ys, `${impl().name} exp specials`);
      expect(ys[0]).toBe(1);
      expect(ys[1]).toBe(1);
      expect(ys[2]).toBe(Infinity);
      expect(ys[3]).toBe(0);
      expect(ys[4]).toBeNaN();
      expect(ys[13]).toBe(0); // exp(−1e30) = +0
      expect(ys[8]).toBe(Infinity);
      // y may alias x
      const z = x.slice(0, 1001);
      impl().exp(z, z, z.length);
      expect(Array.from(z)).toEqual(Array.from(y.subarray(0, 1001)));
    });

    it('exp: fast-check property, within 1 ulp of Math.exp for any f32', () => {
      fc.assert(
        fc.property(fc.array(fc.float(), { minLength: 1, maxLength: 37 }), (xs) => {
          const x = Float32Array.from(xs);
          const y = new Float32Array(x.length);
          impl().exp(x, y, x.length);
          checkExp(x, y, `${impl().name} exp property`);
        }),
        { seed: 7100, numRuns: 300 },
      );
    });

    it('add, scale, axpy match the f64 oracle; add may alias its output', () => {
      const rng = new TestRng(9);
      for (const n of [1, 3, 4, 67, 1001]) {
        const a = rng.f32(n);
        const b = rng.f32(n);
        const out = new Float32Array(n);
        impl().add(a, b, out, n);
        const ref = new Float64Array(n);
        jsKernels.add(f64(a), f64(b), ref, n);
        expectWithin(out, ref, (i) => U32 * Math.abs(ref[i]!), `${impl().name} add`);
        const aliased = a.slice();
        impl().add(aliased, b, aliased, n);
        expect(Array.from(aliased)).toEqual(Array.from(out));

        const x = a.slice();
        impl().scale(x, 0.37, n);
        const xRef = f64(a);
        jsKernels.scale(xRef, 0.37, n);
        // alpha rounds to f32 (u) before the product (u)
        expectWithin(x, xRef, (i) => 2 * U32 * Math.abs(xRef[i]!), `${impl().name} scale`);

        const y = b.slice();
        impl().axpy(-1.7, a, y, n);
        const yRef = f64(b);
        jsKernels.axpy(-1.7, f64(a), yRef, n);
        expectWithin(y, yRef, (i) => 3 * U32 * (Math.abs(b[i]!) + 1.7 * Math.abs(a[i]!)), `${impl().name} axpy`);
      }
    });
  });
}
