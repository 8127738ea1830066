/**
 * Properties of the MoE layer and the SwiGLU MLP against simple definitions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { gateForward } from '../../src/model/gate.js';
import { mlpForward } from '../../src/model/mlp.js';
import { moeForward, moeWeightsFrom } from '../../src/model/moe.js';
import { Random } from '../../src/random.js';
import type { Tensor } from '../../src/tensor.js';
import { randomTensor } from '../helpers/random.js';
import { groupedMoEConfig, moeConfig, randomMLP, randomMoE } from './helpers.js';

const shapeArb = fc.record({
  G: fc.integer({ min: 1, max: 3 }),
  groupSize: fc.integer({ min: 2, max: 4 }),
  scoring: fc.constantFrom('sigmoid' as const, 'softmax' as const),
  bias: fc.boolean(),
  shared: fc.integer({ min: 0, max: 2 }),
  d: fc.integer({ min: 1, max: 8 }),
  I: fc.integer({ min: 1, max: 5 }),
  N: fc.integer({ min: 1, max: 12 }),
  dtype: fc.constantFrom('float32' as const, 'float64' as const),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

type Shape = typeof shapeArb extends fc.Arbitrary<infer T> ? T : never;

const configOf = (p: Shape) => groupedMoEConfig(p, 3, 2.5);

describe('mlpForward', () => {
  it('equals down(silu(gate x) ⊙ up x) written out per element (f64)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.nat(), (N, d, I, seed) => {
        const rng = new Random(seed);
        const w = randomMLP(rng, d, I, 'float64');
        const x = randomTensor(rng, [N, d], 'float64', 1).data;
        const { out } = mlpForward(w, x, N);
        const lin = (W: Tensor, v: number[], o: number) => v.reduce((s, vi, i) => s + vi * W.data[o * v.length + i]!, 0);
        for (let t = 0; t < N; t++) {
          const xt = Array.from(x.subarray(t * d, (t + 1) * d));
          const h = Array.from({ length: I }, (_, i) => {
            const a = lin(w.gate_proj, xt, i);
            return (a / (1 + Math.exp(-a))) * lin(w.up_proj, xt, i);
          });
          // f64, reductions of length ≤ 6: 1e-13 absolute is ≫ rounding and ≪ any real error
          for (let j = 0; j < d; j++) expect(Math.abs(out[t * d + j]! - lin(w.down_proj, h, j))).toBeLessThan(1e-13);
        }
      }),
      { seed: 701, numRuns: 100 },
    );
  });
});

describe('moeForward', () => {
  it('equals Σ_k w[t,k]·Expert_{I[t,k]}(x_t) + Shared(x_t) computed one token and one expert at a time (f64)', () => {
    fc.assert(
      fc.property(shapeArb, (p) => {
        const config = configOf(p);
        const rng = new Random(p.seed);
        const w = randomMoE(rng, config, 'float64');
        const d = config.hiddenSize;
        const K = config.numExpertsPerTok;
        const x = randomTensor(rng, [p.N, d], 'float64', 1).data;
        const { out, routing } = moeForward(config, w, x, p.N);
        for (let t = 0; t < p.N; t++) {
          const xt = x.slice(t * d, (t + 1) * d);
          const ref = new Float64Array(d);
          for (let k = 0; k < K; k++) {
            const y = mlpForward(w.experts[routing.indices[t * K + k]!]!, xt, 1).out;
            for (let j = 0; j < d; j++) ref[j] = ref[j]! + routing.weights[t * K + k]! * y[j]!;
          }
          // the shared expert is added unscaled (not × routed_scaling_factor)
          if (w.shared_experts !== null) {
            const y = mlpForward(w.shared_experts, xt, 1).out;
            for (let j = 0; j < d; j++) ref[j] = ref[j]! + y[j]!;
          }
          for (let j = 0; j < d; j++) expect(Math.abs(out[t * d + j]! - ref[j]!)).toBeLessThan(1e-12);
        }
      }),
      { seed: 702, numRuns: 100 },
    );
  });

  // the wasm kernels serve f32 only; f64 cases still run the js kernels under 'wasm'
  it.each(['js', 'wasm'] as const)('is grouping-invariant: a token’s output is bit-identical alone, in any batch, in any order (%s kernels)', async (backend) => {
    await useBackend(backend);
    try {
      fc.assert(
        fc.property(shapeArb, (p) => {
          const config = configOf(p);
          const rng = new Random(p.seed);
          const w = randomMoE(rng, config, p.dtype);
          const d = config.hiddenSize;
          const x = randomTensor(rng, [p.N, d], p.dtype, 1).data;
          const full = moeForward(config, w, x, p.N).out;
          // reversed order
          const xr = x.slice();
          for (let t = 0; t < p.N; t++) xr.set(x.subarray(t * d, (t + 1) * d), (p.N - 1 - t) * d);
          const rev = moeForward(config, w, xr, p.N).out;
          for (let t = 0; t < p.N; t++) {
            const alone = moeForward(config, w, x.slice(t * d, (t + 1) * d), 1).out;
            expect(Array.from(full.subarray(t * d, (t + 1) * d))).toEqual(Array.from(alone));
            expect(Array.from(rev.subarray((p.N - 1 - t) * d, (p.N - t) * d))).toEqual(Array.from(alone));
          }
        }),
        { seed: 703, numRuns: 100 },
      );
    } finally {
      await useBackend('js');
    }
  });

  it('returns the gate routing and traces gate, shared and output under the module prefix', () => {
    const config = moeConfig({ d: 4, E: 6, K: 2, G: 3, topkGroup: 2, I: 3, shared: 1, scoring: 'sigmoid', bias: true, R: 2.5 });
    const w = randomMoE(new Random(3), config, 'float32');
    const x = randomTensor(new Random(4), [5, 4], 'float32', 1).data;
    const seen: string[] = [];
    const { routing } = moeForward(config, w, x, 5, { prefix: 'model.layers.3.mlp', trace: (n) => seen.push(n) });
    expect(seen).toEqual([
      'model.layers.3.mlp.gate:logits',
      'model.layers.3.mlp.gate:scores',
      'model.layers.3.mlp.gate:indices',
      'model.layers.3.mlp.gate:weights',
      'model.layers.3.mlp.shared_experts:out',
      'model.layers.3.mlp:out',
    ]);
    expect(Array.from(routing.indices)).toEqual(Array.from(gateForward(config, w.gate, x, 5).routing.indices));
  });

  it('moeWeightsFrom reads HF names and names a missing tensor', () => {
    const config = moeConfig({ d: 2, E: 2, K: 1, G: 1, topkGroup: 1, I: 1, shared: 1, scoring: 'sigmoid', bias: true, R: 1 });
    const w = randomMoE(new Random(5), config, 'float64');
    const p = 'model.layers.1.mlp';
    const m = new Map<string, Tensor>([
      [`${p}.gate.weight`, w.gate.weight],
      [`${p}.gate.e_score_correction_bias`, w.gate.e_score_correction_bias!],
    ]);
    w.experts.forEach((e, i) => {
      for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) m.set(`${p}.experts.${i}.${k}.weight`, e[k]);
    });
    for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) m.set(`${p}.shared_experts.${k}.weight`, w.shared_experts![k]);
    const got = moeWeightsFrom(config, m, p);
    expect(got.experts[1]!.down_proj).toBe(w.experts[1]!.down_proj);
    expect(got.gate.e_score_correction_bias).toBe(w.gate.e_score_correction_bias);
    m.delete(`${p}.experts.1.up_proj.weight`);
    expect(() => moeWeightsFrom(config, m, p)).toThrow(`'${p}.experts.1.up_proj.weight'`);
  });
});
