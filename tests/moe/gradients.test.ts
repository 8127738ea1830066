/**
 * Central finite-difference checks (f64) of every backward in this area: SwiGLU MLP, router,
 * MoE layer and the sequence-wise balance loss. Scalar objective L = Σ c ⊙ output with a random
 * c. FD step h = 1e-5: truncation O(h²·f''') ≈ 1e-10 and rounding O(ε·|L|/h) ≈ 1e-11 relative,
 * so 1e-6 of the largest sampled gradient is a safe bound that a wrong term still exceeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { gateBackward, gateForward, type GateWeights } from '../../src/model/gate.js';
import { mlpBackward, mlpForward } from '../../src/model/mlp.js';
import { moeBackward, moeForward } from '../../src/model/moe.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { sequenceBalanceLoss } from '../../src/model/balance_loss.js';
import { dot } from '../helpers/finite_difference.js';
import { randomTensor } from '../helpers/random.js';
import { fdCheck, groupedMoEConfig, randomGate, randomMLP, randomMoE, sampleIndices, zerosLikeMLP, zerosLikeMoE } from './helpers.js';

const TOL = 1e-6;
const F64 = 'float64' as const;

/** Fails with the FD detail when the relative error is above TOL. */
function expectGrad(r: { worst: number; detail: string }, what: string): void {
  if (r.worst > TOL) throw new Error(`${what}: relative error ${r.worst.toExponential(2)} (${r.detail})`);
}

const moeShape = fc.record({
  G: fc.integer({ min: 1, max: 3 }),
  groupSize: fc.integer({ min: 2, max: 3 }),
  scoring: fc.constantFrom('sigmoid' as const, 'softmax' as const),
  norm: fc.boolean(),
  bias: fc.boolean(),
  shared: fc.integer({ min: 0, max: 2 }),
  d: fc.integer({ min: 2, max: 6 }),
  I: fc.integer({ min: 1, max: 4 }),
  N: fc.integer({ min: 1, max: 5 }),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

type MoEShape = typeof moeShape extends fc.Arbitrary<infer T> ? T : never;

const configOf = (p: MoEShape) => groupedMoEConfig(p, 2, 1.7);

describe('finite differences (f64)', () => {
  it('SwiGLU MLP: dx, d gate_proj, d up_proj, d down_proj', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.nat(), (N, d, I, seed) => {
        const rng = new Random(seed);
        const w = randomMLP(rng, d, I, F64, 0.7);
        const x = randomTensor(rng, [N, d], F64, 1).data;
        const c = randomTensor(rng, [N, d], F64, 1).data;
        const { saved } = mlpForward(w, x, N, true);
        const grads = zerosLikeMLP(w);
        const dx = mlpBackward(w, grads, saved!, c);
        const L = () => dot(c, mlpForward(w, x, N).out);
        expectGrad(fdCheck(L, x, dx, sampleIndices(rng, x.length, 12)), 'mlp dx');
        for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) {
          expectGrad(fdCheck(L, w[k].data, grads[k].data, sampleIndices(rng, w[k].size, 12)), `mlp d${k}`);
        }
      }),
      { seed: 601, numRuns: 40 },
    );
  });

  it('router: dx and dW_g through the gather, renormalisation, scaling and sigmoid/softmax, plus dscores', () => {
    fc.assert(
      fc.property(moeShape, (p) => {
        const config = configOf(p);
        const rng = new Random(p.seed);
        const w = randomGate(rng, config, F64, 1, 0.3);
        const N = p.N;
        const x = randomTensor(rng, [N, config.hiddenSize], F64, 1).data;
        const cw = randomTensor(rng, [N, config.numExpertsPerTok], F64, 1).data;
        const cs = randomTensor(rng, [N, config.nRoutedExperts], F64, 1).data;
        const base = gateForward(config, w, x, N);
        const fixed = Array.from(base.routing.indices);
        // L = Σ cw ⊙ weights + Σ cs ⊙ scores, selection held fixed (checked at every evaluation)
        const L = () => {
          const { routing } = gateForward(config, w, x, N);
          if (Array.from(routing.indices).some((e, i) => e !== fixed[i])) throw new Error('selection changed under ±h');
          return dot(cw, routing.weights) + dot(cs, routing.scores);
        };
        const grads: GateWeights = { weight: Tensor.zeros(w.weight.shape, F64) };
        const dx = gateBackward(config, w, grads, base.saved, cw, cs);
        expectGrad(fdCheck(L, x, dx, sampleIndices(rng, x.length, 12)), 'gate dx');
        expectGrad(fdCheck(L, w.weight.data, grads.weight.data, sampleIndices(rng, w.weight.size, 16)), 'gate dW_g');
      }),
      { seed: 602, numRuns: 60 },
    );
  });

  it('MoE layer: dx, every routed expert, the shared expert and the gate weight', () => {
    fc.assert(
      fc.property(moeShape, (p) => {
        const config = configOf(p);
        const rng = new Random(p.seed);
        const w = randomMoE(rng, config, F64);
        const N = p.N;
        const x = randomTensor(rng, [N, config.hiddenSize], F64, 1).data;
        const c = randomTensor(rng, [N, config.hiddenSize], F64, 1).data;
        const base = moeForward(config, w, x, N, { save: true });
        const fixed = Array.from(base.routing.indices);
        const L = () => {
          const r = moeForward(config, w, x, N);
          if (Array.from(r.routing.indices).some((e, i) => e !== fixed[i])) throw new Error('selection changed under ±h');
          return dot(c, r.out);
        };
        const grads = zerosLikeMoE(w);
        const dx = moeBackward(config, w, grads, base.saved!, c);
        expectGrad(fdCheck(L, x, dx, sampleIndices(rng, x.length, 10)), 'moe dx');
        expectGrad(fdCheck(L, w.gate.weight.data, grads.gate.weight.data, sampleIndices(rng, w.gate.weight.size, 10)), 'moe d gate');
        w.experts.forEach((ew, e) => {
          for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) {
            const g = grads.experts[e]![k].data;
            if (base.routing.load[e] === 0) expect(g.every((v) => v === 0)).toBe(true); // unused expert: no gradient
            expectGrad(fdCheck(L, ew[k].data, g, sampleIndices(rng, ew[k].size, 4)), `moe expert ${e} ${k}`);
          }
        });
        if (w.shared_experts !== null) {
          for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) {
            const sw = w.shared_experts[k];
            expectGrad(fdCheck(L, sw.data, grads.shared_experts![k].data, sampleIndices(rng, sw.size, 8)), `moe shared ${k}`);
          }
        }
      }),
      { seed: 603, numRuns: 40 },
    );
  });

  it('sequence-wise balance loss: dscores, and end to end through the router into W_g and x', () => {
    fc.assert(
      fc.property(moeShape, fc.integer({ min: 1, max: 3 }), fc.boolean(), (p, B, literalTopk) => {
        const config = configOf({ ...p, scoring: 'sigmoid' });
        const rng = new Random(p.seed);
        const T = p.N;
        const N = B * T;
        const alpha = 0.37; // any α; the loss is linear in it
        const w = randomGate(rng, config, F64, 1, 0.3);
        const x = randomTensor(rng, [N, config.hiddenSize], F64, 1).data;
        const base = gateForward(config, w, x, N);
        const fixed = Array.from(base.routing.indices);
        const { dscores } = sequenceBalanceLoss(config, base.routing, B, T, alpha, { literalTopk });
        // w.r.t. the scores themselves (counts f held fixed: they carry no gradient)
        const scores = base.routing.scores;
        const Ls = () => sequenceBalanceLoss(config, base.routing, B, T, alpha, { literalTopk }).loss;
        if (!literalTopk) expectGrad(fdCheck(Ls, scores, dscores, sampleIndices(rng, scores.length, 12)), 'balance dscores');
        // end to end: gate → balance loss → gateBackward(dweights = 0, dscores)
        const L = () => {
          const { routing } = gateForward(config, w, x, N);
          if (Array.from(routing.indices).some((e, i) => e !== fixed[i])) throw new Error('selection changed under ±h');
          return sequenceBalanceLoss(config, routing, B, T, alpha).loss;
        };
        const grads: GateWeights = { weight: Tensor.zeros(w.weight.shape, F64) };
        const fresh = gateForward(config, w, x, N);
        const ds = sequenceBalanceLoss(config, fresh.routing, B, T, alpha).dscores;
        const dx = gateBackward(config, w, grads, fresh.saved, new Float64Array(N * config.numExpertsPerTok), ds);
        expectGrad(fdCheck(L, x, dx, sampleIndices(rng, x.length, 8)), 'balance → gate dx');
        expectGrad(fdCheck(L, w.weight.data, grads.weight.data, sampleIndices(rng, w.weight.size, 8)), 'balance → gate dW_g');
      }),
      { seed: 604, numRuns: 40 },
    );
  });
});

describe('f32 backward (js and wasm kernels) vs the f64 backward', () => {
  it.each(['js', 'wasm'] as const)('MoE dx and every weight gradient agree to 1e-4·max (%s kernels)', async (backend) => {
    await useBackend(backend);
    try {
      fc.assert(
        fc.property(moeShape, (p) => {
          const config = configOf({ ...p, d: 4 * p.d, I: 4 * p.I, N: 4 * p.N });
          const N = 4 * p.N;
          const w64 = randomMoE(new Random(p.seed), config, F64);
          const x64 = randomTensor(new Random(p.seed + 1), [N, config.hiddenSize], F64, 1).data;
          const c64 = randomTensor(new Random(p.seed + 2), [N, config.hiddenSize], F64, 1).data;
          const w32 = randomMoE(new Random(p.seed), config, 'float32');
          const x32 = Float32Array.from(x64);
          const c32 = Float32Array.from(c64);
          const r64 = moeForward(config, w64, x64, N, { save: true });
          const r32 = moeForward(config, w32, x32, N, { save: true });
          // the f32 copy of the weights must route identically (random inputs: margins ≫ f32 noise)
          fc.pre(r64.routing.indices.every((e, i) => e === r32.routing.indices[i]));
          const g64 = zerosLikeMoE(w64);
          const g32 = zerosLikeMoE(w32);
          const dx64 = moeBackward(config, w64, g64, r64.saved!, c64);
          const dx32 = moeBackward(config, w32, g32, r32.saved!, c32);
          // README: f32 vs f64 gradients differ by ≤ 2e-6 of max per tensor; 1e-4·max as the suggested bound
          const tol = { atolOfMax: 1e-4 };
          expectClose(dx32, dx64, 'dx', tol);
          expectClose(g32.gate.weight.data, g64.gate.weight.data, 'gate.weight', tol);
          g64.experts.forEach((e, i) => {
            for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) expectClose(g32.experts[i]![k].data, e[k].data, `experts.${i}.${k}`, tol);
          });
          if (g64.shared_experts !== null) {
            for (const k of ['gate_proj', 'up_proj', 'down_proj'] as const) {
              expectClose(g32.shared_experts![k].data, g64.shared_experts[k].data, `shared_experts.${k}`, tol);
            }
          }
        }),
        { seed: 605, numRuns: 30 },
      );
    } finally {
      await useBackend('js');
    }
  });
});
