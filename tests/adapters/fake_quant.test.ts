/**
 * Fake quantization (issue 13 item 2, docs/components/fake-quant.md): INT8/INT4 codes against a definition written
 * here (per channel / per group, symmetric / asymmetric, round-half-even, clip), error bounds and the error-vs-bits
 * property, the FP8 block scheme, and the STE / clipped-STE gradients by finite differences on the dequantized path.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { E4M3_TABLE } from '../../src/io/numeric.js';
import { FakeQuantTransform, fakeQuantize, fakeQuantizeWeights } from '../../src/model/adapters/fake_quant.js';
import { LoraAdapter } from '../../src/model/adapters/lora.js';
import { TransformedModel } from '../../src/model/adapters/transform.js';
import { dequantizeInt, quantizeInt, roundHalfEven, type IntQuantScheme } from '../../src/ops/int_quant.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType, type FloatArray } from '../../src/tensor.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from '../model/helpers.js';

/**
 * The integer quantizer by definition, one group at a time: r() rounds to the weight precision; symmetric
 * q = clamp(rne(w/s), −Q, Q) with s = r(r(clip·amax)/Q); asymmetric s = r(r(r(clip·hi) − r(clip·lo))/(2^b−1)),
 * z = clamp(−rne(r(r(clip·lo)/s)), 0, 2^b−1), q = clamp(rne(w/s) + z, 0, 2^b−1); an all-zero group has s = 1.
 */
function referenceCodes(w: FloatArray, rows: number, cols: number, s: IntQuantScheme): { codes: number[]; scales: number[]; zps: number[] } {
  const r = w instanceof Float32Array ? Math.fround : (x: number): number => x;
  const rne = (x: number): number => {
    const lo = Math.floor(x);
    return x - lo < 0.5 ? lo : x - lo > 0.5 ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  };
  const b = s.kind === 'int8' ? 8 : 4;
  const g = s.groupSize ?? cols;
  const clip = s.clip ?? 1;
  const sym = s.symmetric ?? true;
  const [qmin, qmax] = sym ? [-(2 ** (b - 1) - 1), 2 ** (b - 1) - 1] : [0, 2 ** b - 1];
  const codes: number[] = [];
  const scales: number[] = [];
  const zps: number[] = [];
  for (let i = 0; i < rows; i++) {
    const row = Array.from(w.subarray(i * cols, (i + 1) * cols));
    for (let j0 = 0; j0 < cols; j0 += g) {
      const grp = row.slice(j0, j0 + g);
      const lo = Math.min(0, ...grp);
      const hi = Math.max(0, ...grp);
      let scale: number;
      let z = 0;
      if (sym) {
        const a = r(clip * Math.max(-lo, hi));
        scale = a === 0 ? 1 : r(a / qmax);
      } else {
        const range = r(r(clip * hi) - r(clip * lo));
        scale = range === 0 ? 1 : r(range / qmax);
        z = Math.min(qmax, Math.max(qmin, -rne(r(r(clip * lo) / scale))));
      }
      scales.push(scale);
      zps.push(z);
      for (const v of grp) codes.push(Math.min(qmax, Math.max(qmin, rne(r(v / scale)) + z)));
    }
  }
  return { codes, scales, zps };
}

function randomMatrix(rows: number, cols: number, dtype: DType, seed: number, std = 1): Tensor {
  const t = Tensor.zeros([rows, cols], dtype);
  new Random(seed).fillNormal(t.data, std);
  return t;
}

const schemeArb = fc.record({
  kind: fc.constantFrom('int8' as const, 'int4' as const),
  groupSize: fc.option(fc.integer({ min: 1, max: 24 }), { nil: undefined }),
  symmetric: fc.boolean(),
  clip: fc.option(fc.constantFrom(1, 0.9, 0.5, 0.3), { nil: undefined }),
});

describe('roundHalfEven', () => {
  it('is the nearest integer, ties to even (property over doubles and exact ties)', () => {
    expect([2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5, 0.49999999999999994, 2 ** 53 + 2].map(roundHalfEven)).toEqual([2, 4, -2, -4, 0, 0, 2, 0, 2 ** 53 + 2]);
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), (x) => {
        const q = roundHalfEven(x);
        expect(Number.isInteger(q)).toBe(true);
        expect(Math.abs(q - x)).toBeLessThanOrEqual(0.5);
        if (Math.abs(q - x) === 0.5) expect(q % 2 === 0).toBe(true);
      }),
      { seed: 1320, numRuns: 2000 },
    );
  });
});

describe('integer codes', () => {
  it('hand-computed: scale a power of two, exact ties round to even (symmetric and asymmetric INT4)', () => {
    // row max |w| = 7·2^-7 → symmetric INT4 scale = 2^-7; w/scale = 2.5, 3.5, −2.5, 7, −0.5
    const u = 2 ** -7;
    const w = Float64Array.from([2.5 * u, 3.5 * u, -2.5 * u, 7 * u, -0.5 * u]);
    const q = quantizeInt(w, 1, 5, { kind: 'int4' });
    expect(Array.from(q.codes)).toEqual([2, 4, -2, 7, 0]);
    expect(Array.from(q.scales)).toEqual([u]);
    expect(Array.from(dequantizeInt(q))).toEqual([2 * u, 4 * u, -2 * u, 7 * u, 0]);
    // asymmetric INT4 on [−3u, 12u]: scale = 15u/15 = u, z = −rne(−3) = 3; q = rne(w/u) + 3
    const wa = Float64Array.from([-3 * u, 12 * u, 0.5 * u, 1.5 * u, 0]);
    const qa = quantizeInt(wa, 1, 5, { kind: 'int4', symmetric: false });
    expect(Array.from(qa.codes)).toEqual([0, 15, 3, 5, 3]);
    expect(Array.from(qa.zeroPoints)).toEqual([3]);
    expect(Array.from(dequantizeInt(qa))).toEqual([-3 * u, 12 * u, 0, 2 * u, 0]);
    // clip 0.5 on symmetric INT8: scale = 0.5·amax/127, the largest values clamp to ±127 and are marked clipped
    const wc = Float64Array.from([1, -1, 0.25, 0.5]);
    const qc = quantizeInt(wc, 1, 4, { kind: 'int8', clip: 0.5 });
    expect(Array.from(qc.codes)).toEqual([127, -127, 64, 127]);
    expect(Array.from(qc.inRange)).toEqual([0, 0, 1, 1]);
  });

  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`codes, scales and zero points equal the definition (${dtype}; property, seed 1321, 150 runs)`, () => {
      fc.assert(
        fc.property(schemeArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1e6 }), (scheme, rows, cols, seed) => {
          const W = randomMatrix(rows, cols, dtype, seed, 0.1);
          if (seed % 5 === 0) W.data.fill(0, 0, Math.min(cols, 3)); // zero runs (an all-zero group when g ≤ 3)
          const q = quantizeInt(W.data, rows, cols, scheme);
          const ref = referenceCodes(W.data, rows, cols, scheme);
          expect(Array.from(q.codes)).toEqual(ref.codes);
          expect(Array.from(q.scales)).toEqual(ref.scales);
          expect(Array.from(q.zeroPoints)).toEqual(ref.zps);
          expect(q.groups).toBe(Math.ceil(cols / Math.min(scheme.groupSize ?? cols, cols)));
        }),
        { seed: 1321, numRuns: 150 },
      );
    });
  }

  it('error ≤ scale/2 where not clipped; 0 is exact; dequantized = (q − z)·scale (property)', () => {
    fc.assert(
      fc.property(schemeArb, fc.integer({ min: 0, max: 1e6 }), (scheme, seed) => {
        const rows = 3;
        const cols = 20;
        const W = randomMatrix(rows, cols, 'float64', seed);
        W.data[seed % (rows * cols)] = 0;
        const q = quantizeInt(W.data, rows, cols, scheme);
        const deq = dequantizeInt(q);
        for (let i = 0; i < rows * cols; i++) {
          const k = Math.floor(i / cols) * q.groups + Math.floor((i % cols) / q.groupSize);
          expect(deq[i]).toBe((q.codes[i]! - q.zeroPoints[k]!) * q.scales[k]!);
          if (q.inRange[i] === 1) expect(Math.abs(deq[i]! - W.data[i]!)).toBeLessThanOrEqual(q.scales[k]! / 2 * (1 + 1e-12));
          if (W.data[i] === 0) expect(deq[i]).toBe(0);
        }
        if ((scheme.clip ?? 1) === 1) expect(q.inRange.every((v) => v === 1)).toBe(true);
      }),
      { seed: 1322, numRuns: 200 },
    );
  });

  it('error vs bits: INT8 mean squared error < INT4 mean squared error on random weights (property, seed 1323, 100 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.boolean(), fc.option(fc.integer({ min: 2, max: 32 }), { nil: undefined }), (seed, symmetric, groupSize) => {
        const W = randomMatrix(8, 32, 'float64', seed);
        const mse = (kind: 'int8' | 'int4'): number => {
          const v = fakeQuantize(W, { kind, symmetric, ...(groupSize !== undefined ? { groupSize } : {}) }).value.data;
          let s = 0;
          for (let i = 0; i < v.length; i++) s += (v[i]! - W.data[i]!) ** 2;
          return s / v.length;
        };
        expect(mse('int8')).toBeLessThan(mse('int4'));
      }),
      { seed: 1323, numRuns: 100 },
    );
  });

  it('bad schemes are InputErrors', () => {
    const W = randomMatrix(2, 4, 'float64', 1);
    expect(() => fakeQuantize(W, { kind: 'int2' } as unknown as IntQuantScheme)).toThrow(/kind must be/);
    expect(() => fakeQuantize(W, { kind: 'int8', groupSize: 0 })).toThrow(/groupSize/);
    expect(() => fakeQuantize(W, { kind: 'int8', clip: 1.5 })).toThrow(/clip must be in \(0, 1\]/);
    expect(() => fakeQuantize(new Tensor([8], new Float64Array(8)), { kind: 'int8' })).toThrow(/2-D/);
    expect(() => fakeQuantize(W, { kind: 'fp8-block', block: 0 })).toThrow(InputError);
  });
});

describe('FP8 128×128 block scheme', () => {
  it('every value is an e4m3 value times its block scale; the block max maps to ±448·scale; |error| ≤ 2^-4·|w| (normal range)', () => {
    const W = randomMatrix(40, 36, 'float64', 9);
    const block = 16; // small blocks so the test has full and partial ones
    const v = fakeQuantize(W, { kind: 'fp8-block', block }).value.data;
    const e4m3 = new Set(Array.from(E4M3_TABLE).filter((x) => Number.isFinite(x)));
    for (let bi = 0; bi < 40; bi += block) {
      for (let bj = 0; bj < 36; bj += block) {
        let amax = 0;
        for (let i = bi; i < Math.min(bi + block, 40); i++) for (let j = bj; j < Math.min(bj + block, 36); j++) amax = Math.max(amax, Math.abs(W.data[i * 36 + j]!));
        const s = Math.fround(Math.fround(amax) / 448); // the scale of the F32 checkpoint format: amax held in f32
        for (let i = bi; i < Math.min(bi + block, 40); i++) {
          for (let j = bj; j < Math.min(bj + block, 36); j++) {
            const w = W.data[i * 36 + j]!;
            const got = v[i * 36 + j]!;
            expect(e4m3.has(got / s), `(${i}, ${j})`).toBe(true);
            if (Math.abs(w / s) >= 2 ** -6) expect(Math.abs(got - w)).toBeLessThanOrEqual(2 ** -4 * Math.abs(w) * (1 + 1e-9));
            if (Math.abs(w) === amax) expect(Math.abs(got)).toBe(448 * s);
          }
        }
      }
    }
  });
});

describe('STE gradients on the whole model (f64)', () => {
  const config = microConfig();
  const ids = randomIds(2, 6, config.vocabSize, 4);

  for (const ste of ['identity', 'clipped'] as const) {
    it(`${ste}: dW = dŴ by finite differences on the dequantized weights${ste === 'clipped' ? ', 0 where clipped' : ''}`, () => {
      const base = randomWeights(config, 'float64', 12);
      const rules = [
        { targets: ['*.self_attn.o_proj', '*.mlp.experts.*.up_proj'], scheme: { kind: 'int4', groupSize: 4, clip: 0.6 } as const, ste },
        { targets: 'lm_head', scheme: { kind: 'int8', symmetric: false, clip: 0.7 } as const, ste },
      ];
      const qat = new TransformedModel(config, new FakeQuantTransform(base, rules));
      const r = qat.lossAndGrads(ids);
      expect([...r.grads.keys()]).toEqual([...base.keys()]);
      expect(r.loads.length).toBe(2); // the biases are among the parameters: the trainer updates them
      const eff = qat.transform.effectiveWeights();
      const plain = new DeepSeekV3(config, eff);
      const sig = (x: ReturnType<DeepSeekV3['lossAndGrads']>): string => [...x.routing.values()].map((y) => Array.from(y.indices).join(',')).join('|');
      const sig0 = sig(plain.lossAndGrads(ids));
      const rng = new Random(8);
      let clipped = 0;
      for (const name of ['model.layers.0.self_attn.o_proj.weight', 'model.layers.1.mlp.experts.2.up_proj.weight', 'lm_head.weight']) {
        const g = r.grads.get(name)!;
        const What = eff.get(name)!;
        expect(What).not.toBe(base.get(name)); // the model ran on a quantized copy
        const { pass } = fakeQuantize(base.get(name)!, rules[name === 'lm_head.weight' ? 1 : 0]!.scheme);
        const gmax = maxAbs(g.data);
        const samples = [rng.int(g.size), rng.int(g.size), rng.int(g.size)];
        if (pass !== null) {
          const c = pass.indexOf(0);
          if (c >= 0) samples.push(c);
        }
        for (const i of samples) {
          const wasClipped = pass !== null && pass[i] === 0;
          if (ste === 'clipped' && wasClipped) {
            expect(g.data[i], `${name}[${i}] clipped`).toBe(0);
            clipped++;
            continue;
          }
          const [up, dn] = evalPlusMinus(() => plain.lossAndGrads(ids), What.data, i, 1e-5);
          expect(sig(up)).toBe(sig0);
          expect(sig(dn)).toBe(sig0);
          const fd = (up.loss.total - dn.loss.total) / 2e-5;
          expect(Math.abs(fd - g.data[i]!) / Math.max(Math.abs(g.data[i]!), 1e-2 * gmax), `${name}[${i}]`).toBeLessThanOrEqual(1e-6);
        }
      }
      if (ste === 'clipped') expect(clipped).toBeGreaterThan(0);
      // untargeted tensors pass through unchanged
      const full = plain.lossAndGrads(ids);
      expect(Array.from(r.grads.get('model.layers.0.self_attn.kv_b_proj.weight')!.data)).toEqual(Array.from(full.grads.get('model.layers.0.self_attn.kv_b_proj.weight')!.data));
    });
  }

  it('rules that overlap, or match nothing, are InputErrors naming the module or glob', () => {
    const base = randomWeights(config, 'float64', 12);
    expect(() => new FakeQuantTransform(base, [{ targets: '*.o_proj', scheme: { kind: 'int8' } }, { targets: 'model.layers.1.*', scheme: { kind: 'int4' } }])).toThrow(
      /module 'model\.layers\.1\.self_attn\.o_proj' is matched by rule 0 and rule 1/,
    );
    expect(() => fakeQuantizeWeights(base, [{ targets: '*.nothing', scheme: { kind: 'int8' } }])).toThrow(/glob '\*\.nothing' matches no Linear module/);
  });

  it('QLoRA: a LoRA adapter over fakeQuantizeWeights(base) runs the quantized base plus s·B·A', () => {
    const base = randomWeights(config, 'float64', 12);
    const qbase = fakeQuantizeWeights(base, [{ targets: ['*.self_attn.*', '*.mlp.*'], scheme: { kind: 'int4', groupSize: 8 } }]);
    const a = LoraAdapter.create(qbase, { targets: '*.self_attn.q_b_proj', r: 2 });
    const x = new TransformedModel(config, a).forward(ids).logits.data;
    expect(Array.from(x)).toEqual(Array.from(new DeepSeekV3(config, qbase).forward(ids).logits.data)); // B = 0
    expect(Array.from(x)).not.toEqual(Array.from(new DeepSeekV3(config, base).forward(ids).logits.data));
  });
});
