import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdamW, fmaF32, type AdamWImpl } from '../../src/train/adamw.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';

/** SPEC §5.5 written out literally, in f64. */
function adamwDefinition(
  theta: number[], grads: number[][], lrs: number[], wd: number, b1 = 0.9, b2 = 0.95, eps = 1e-8,
): number[] {
  const p = [...theta];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k]!;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - b1 ** t);
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
      p[i] = p[i]! - (lr * mHat) / denom;
    }
  });
  return p;
}

const float = fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true });

describe('AdamW vs the SPEC §5.5 definition (f64)', () => {
  it('matches over random sizes, step counts and ≥2-D/1-D shapes (gradients spanning 1e-3..10)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1 }),
        (n, steps, twoD) => {
          const shape = twoD === 1 ? [1, n] : [n];
          const theta = Array.from({ length: n }, (_, i) => Math.sin(i + n + steps));
          const grads = Array.from({ length: steps }, (_, k) => Array.from({ length: n }, (_, i) => Math.cos(3 * i + 7 * k) * 10 ** ((i % 5) - 3)));
          const lrs = Array.from({ length: steps }, (_, k) => 1e-3 * (1 + k));
          const params = new Map([['w', Tensor.from(shape, theta, 'float64')]]);
          const opt = new AdamW(params);
          for (let k = 0; k < steps; k++) opt.step(new Map([['w', Tensor.from(shape, grads[k]!, 'float64')]]), lrs[k]!);
          const ref = adamwDefinition(theta, grads, lrs, twoD === 1 ? 0.1 : 0);
          // same math, different association ((lr/bc1)·m vs lr·(m/bc1)): a few ulp per step
          expectClose(params.get('w')!.data, ref, 'w', { rtol: 1e-13, atol: 1e-15 });
        },
      ),
      { seed: 4242, numRuns: 200 },
    );
  });

  it('matches with random values (fast-check arrays)', () => {
    fc.assert(
      fc.property(fc.array(float, { minLength: 1, maxLength: 12 }), fc.array(float, { minLength: 12, maxLength: 12 }), fc.double({ min: 1e-5, max: 1e-1, noNaN: true }), (theta, g, lr) => {
        const n = theta.length;
        const grads = [g.slice(0, n), g.slice(0, n).map((x) => -0.5 * x)];
        const params = new Map([['m', Tensor.from([n, 1], theta, 'float64')]]);
        const opt = new AdamW(params, { weightDecay: 0.1 });
        for (const gr of grads) opt.step(new Map([['m', Tensor.from([n, 1], gr, 'float64')]]), lr);
        expectClose(params.get('m')!.data, adamwDefinition(theta, grads, [lr, lr], 0.1), 'm', { rtol: 1e-13, atol: 1e-15 });
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('AdamW parameter selection', () => {
  const make = (decayAll = false): { params: Map<string, Tensor>; opt: AdamW } => {
    const params = new Map<string, Tensor>([
      ['model.layers.0.mlp.gate_proj.weight', Tensor.from([2, 2], [1, 2, 3, 4], 'float64')],
      ['model.norm.weight', Tensor.from([2], [1, 1], 'float64')],
      ['model.layers.1.mlp.gate.e_score_correction_bias', Tensor.from([2], [0.5, -0.5], 'float64')],
    ]);
    return { params, opt: new AdamW(params, { decayAll }) };
  };
  const zeroGrads = (params: Map<string, Tensor>): Map<string, Tensor> => new Map([...params].map(([k, t]) => [k, Tensor.zeros(t.shape, 'float64')]));

  it('decays only ≥2-D tensors by default: with g = 0, W·(1 − lr·wd) and the norm weight unchanged', () => {
    const { params, opt } = make();
    opt.step(zeroGrads(params), 0.01);
    // m = v = 0 ⇒ the Adam term is 0/(0 + eps) = 0: only the decay acts (1 − 0.01·0.1 = 0.999)
    expect([...params.get('model.layers.0.mlp.gate_proj.weight')!.data]).toEqual([1 * 0.999, 2 * 0.999, 3 * 0.999, 4 * 0.999]);
    expect([...params.get('model.norm.weight')!.data]).toEqual([1, 1]);
    expect(opt.decays('model.norm.weight')).toBe(false);
  });

  it('decayAll decays 1-D tensors too', () => {
    const { params, opt } = make(true);
    opt.step(zeroGrads(params), 0.01);
    expect([...params.get('model.norm.weight')!.data]).toEqual([0.999, 0.999]);
  });

  it('never touches e_score_correction_bias (not a parameter, SPEC §5.2), even given a gradient', () => {
    const { params, opt } = make(true);
    const grads = zeroGrads(params);
    grads.get('model.layers.1.mlp.gate.e_score_correction_bias')!.data.fill(5);
    opt.step(grads, 0.01);
    expect([...params.get('model.layers.1.mlp.gate.e_score_correction_bias')!.data]).toEqual([0.5, -0.5]);
    expect(opt.names).not.toContain('model.layers.1.mlp.gate.e_score_correction_bias');
  });

  it('rejects a missing or mis-shaped gradient, naming the parameter', () => {
    const { params, opt } = make();
    const grads = zeroGrads(params);
    grads.delete('model.norm.weight');
    expect(() => opt.step(grads, 0.01)).toThrow(/model\.norm\.weight/);
    grads.set('model.norm.weight', Tensor.zeros([3], 'float64'));
    expect(() => opt.step(grads, 0.01)).toThrow(/model\.norm\.weight/);
    expect(opt.stepsTaken).toBe(0);
  });
});

describe('AdamW state export/import', () => {
  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`resumes bit-identically (${dtype})`, () => {
      const init = (): Map<string, Tensor> => new Map([['w', Tensor.from([2, 3], [0.1, -0.2, 0.3, 0.4, -0.5, 0.6], dtype)]]);
      const grad = (k: number): Map<string, Tensor> => new Map([['w', Tensor.from([2, 3], [1, 2, 3, 4, 5, 6].map((x) => Math.sin(x * (k + 1))), dtype)]]);
      const straight = init();
      const a = new AdamW(straight);
      for (let k = 0; k < 6; k++) a.step(grad(k), 1e-2);
      const first = init();
      const b = new AdamW(first);
      for (let k = 0; k < 3; k++) b.step(grad(k), 1e-2);
      const state = b.exportState();
      const resumed = new Map([['w', first.get('w')!.clone()]]);
      const c = new AdamW(resumed);
      c.importState(state);
      for (let k = 3; k < 6; k++) c.step(grad(k), 1e-2);
      expect(c.stepsTaken).toBe(6);
      expect(Array.from(resumed.get('w')!.data)).toEqual(Array.from(straight.get('w')!.data));
    });
  }
});

interface TorchRef {
  torch_version: string;
  shapes: Record<string, number[]>;
  lr: number[];
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  float64: Record<string, { param: number[]; exp_avg: number[]; exp_avg_sq: number[] }>[];
  float32: Record<string, { param: number[]; exp_avg: number[]; exp_avg_sq: number[] }>[];
}

describe('AdamW vs torch.optim.AdamW (foreach=False) fixture', () => {
  const ref = JSON.parse(readFileSync(new URL('../fixtures/torch/adamw_reference.json', import.meta.url), 'utf8')) as TorchRef;

  const runAgainstTorch = (dtype: DType, impl: AdamWImpl, check: (got: ArrayLike<number>, want: number[], what: string) => void): void => {
    const params = new Map(Object.entries(ref.shapes).map(([k, s]) => [k, Tensor.from(s, ref.init[k]!, dtype)]));
    const opt = new AdamW(params, { impl });
    ref.lr.forEach((lr, k) => {
      opt.step(new Map(Object.entries(ref.shapes).map(([n, s]) => [n, Tensor.from(s, ref.grads[k]![n]!, dtype)])), lr);
      const state = opt.exportState();
      for (const name of Object.keys(ref.shapes)) {
        const want = ref[dtype][k]![name]!;
        check(params.get(name)!.data, want.param, `step ${k + 1} ${name} param`);
        check(state.m.get(name)!.data, want.exp_avg, `step ${k + 1} ${name} exp_avg`);
        check(state.v.get(name)!.data, want.exp_avg_sq, `step ${k + 1} ${name} exp_avg_sq`);
      }
    });
  };

  it("impl 'torch' in f32 is bit-identical to torch at every step (param, exp_avg, exp_avg_sq)", () => {
    runAgainstTorch('float32', 'torch', (got, want, what) => expect(Array.from(got), what).toEqual(want));
  });

  it("impl 'torch' in f64 agrees to a few ulp (torch fuses add/addcmul in f64; JS cannot)", () => {
    // 10 steps × a few 1-ulp differences (2.2e-16 relative), amplified ≤ 10× through denom; params
    // that cancel towards 0 carry the absolute error of the tensor's largest terms (atolOfMax)
    runAgainstTorch('float64', 'torch', (got, want, what) => expectClose(got, want, what, { rtol: 1e-14, atolOfMax: 1e-15 }));
  });

  it("impl 'kernel' (js kernels) in f64 agrees to a few ulp", () => {
    runAgainstTorch('float64', 'kernel', (got, want, what) => expectClose(got, want, what, { rtol: 1e-14, atolOfMax: 1e-15 }));
  });

  it("impl 'kernel' in f32 agrees to f32 rounding", () => {
    // the kernel rounds once per element where torch rounds after each op: ≤ ~10 ops × 2^-24 per
    // step, compounded over 10 steps (≈ 1e-5 relative); values that cancel towards 0 carry the
    // absolute error of the tensor's largest terms: 10 steps × 2^-24 ≈ 6e-7 of max|ref|
    runAgainstTorch('float32', 'kernel', (got, want, what) => expectClose(got, want, what, { rtol: 1e-5, atolOfMax: 1e-6 }));
  });
});

describe('fmaF32 (correctly rounded f32 fused multiply-add)', () => {
  const u = 2 ** -12;
  const x = (1 + u) * (1 + u); // 1 + 2^-11 + 2^-24: exactly halfway between two floats
  it('rounds ties to even, and breaks a double-rounding tie by the lost low part', () => {
    expect(fmaF32(1 + u, 1 + u, 0)).toBe(1 + 2 ** -11);
    expect(x).toBe(1 + 2 ** -11 + 2 ** -24);
    expect(fmaF32(1 + u, 1 + u, 2 ** -80)).toBe(1 + 2 ** -11 + 2 ** -23);
    expect(fmaF32(1 + u, 1 + u, -(2 ** -80))).toBe(1 + 2 ** -11);
    expect(fmaF32(-(1 + u), 1 + u, 2 ** -80)).toBe(-(1 + 2 ** -11));
    expect(fmaF32(-(1 + u), 1 + u, -(2 ** -80))).toBe(-(1 + 2 ** -11 + 2 ** -23));
  });

  it('equals the exact result rounded to nearest-even (BigInt oracle)', () => {
    const SCALE = 2 ** 400;
    const big = (v: number): bigint => BigInt(v * SCALE);
    const f32 = fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }).filter((v) => v === 0 || Math.abs(v) > 1e-30);
    fc.assert(
      fc.property(f32, f32, f32, (a, b, c) => {
        const r = fmaF32(a, b, c);
        const exact = big(a * b) + big(c); // a·b exact in double
        const errOf = (y: number): bigint => { const d = big(y) - exact; return d < 0n ? -d : d; };
        // r is an f32, and no f32 neighbour of r is closer to the exact value (ties: even mantissa)
        expect(Math.fround(r)).toBe(r);
        const up = Math.fround(r + Math.abs(r) * 2 ** -23 + 1e-45);
        const down = Math.fround(r - Math.abs(r) * 2 ** -23 - 1e-45);
        for (const nb of [up, down]) {
          if (!Number.isFinite(nb) || nb === r) continue;
          expect(errOf(r) <= errOf(nb)).toBe(true);
        }
      }),
      { seed: 99, numRuns: 3000 },
    );
  });
});
