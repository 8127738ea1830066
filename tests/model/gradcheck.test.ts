/**
 * Whole-model gradient check: central finite differences in f64 of the total objective
 * (main CE + MTP + balance loss) against lossAndGrads, on a micro config, for EVERY parameter tensor
 * (sampled elements), with MTP D = 1 and D = 2, both MTP hidden-state choices and normalisations, q LoRA on/off.
 *
 * Criterion: |fd − g| ≤ 1e-6·max(|g|, 1e-2·max|G|) per sampled element, where G is the tensor's analytic
 * gradient: relative error ≤ 1e-6, with a floor for elements whose gradient is ~0 relative to the tensor
 * (there the FD rounding error, ~ε·L/h ≈ 1e-11, dominates). h = 1e-5 gives truncation error O(h²) ≈ 1e-10·|f'''|.
 * Routing is discontinuous: the check asserts that no perturbation changes any expert selection.
 */
import { describe, expect, it } from 'vitest';
import { DeepSeekV3, type LossOptions } from '../../src/model/model.js';
import { Random } from '../../src/random.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

const H = 1e-5;

interface Variant {
  name: string;
  config: Parameters<typeof microConfig>[0];
  opts: LossOptions;
}

const VARIANTS: Variant[] = [
  { name: 'D=1, post-norm h, paper normalisation', config: { numNextnPredictLayers: 1 }, opts: {} },
  {
    name: 'D=2, pre-norm h, valid-token normalisation, no q LoRA, softmax router',
    config: { numNextnPredictLayers: 2, qLoraRank: 0, scoringFunc: 'softmax', normTopkProb: false, topkMethod: 'greedy', routedScalingFactor: 1.5 },
    opts: { mtpHidden: 'pre_norm', mtpNormalisation: 'valid_tokens' },
  },
  { name: 'D=2, post-norm h', config: { numNextnPredictLayers: 2, firstKDenseReplace: 0 }, opts: { attn: 'absorb' } },
];

function loadSignature(r: ReturnType<DeepSeekV3['lossAndGrads']>): string {
  return [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
}

describe('whole-model finite differences (f64)', () => {
  for (const v of VARIANTS) {
    it(v.name, () => {
      const config = microConfig(v.config);
      const model = new DeepSeekV3(config, randomWeights(config, 'float64', 17));
      const ids = randomIds(2, 7, config.vocabSize, 5);
      // a larger α than V3's 1e-4 so the balance-loss gradient is visible above the FD noise; λ as in the paper
      const opts: LossOptions = { ...v.opts, mtpLambda: 0.3, balanceAlpha: 0.05 };
      const base = model.lossAndGrads(ids, opts);
      expect(base.loss.mtp).toBeGreaterThan(0);
      expect(base.loss.balance).toBeGreaterThan(0);
      expect(base.loss.mtpPerDepth.length).toBe(config.numNextnPredictLayers);
      const sig = loadSignature(base);
      const moeLayers = config.numHiddenLayers + config.numNextnPredictLayers - config.firstKDenseReplace;
      expect(base.routing.size).toBe(moeLayers);
      expect(base.loads.length).toBe(config.topkMethod === 'greedy' ? 0 : moeLayers);
      const rng = new Random(99);
      let checked = 0;
      for (const [name, w] of model.weights) {
        const g = base.grads.get(name)!;
        expect(g.shape).toEqual(w.shape);
        if (name.endsWith('e_score_correction_bias')) {
          expect(maxAbs(g.data)).toBe(0); // selection only: no gradient (SPEC §3.8)
          continue;
        }
        const gmax = maxAbs(g.data);
        // sample 2 elements, plus the largest-gradient element (never all-zero tensors by accident)
        let arg = 0;
        for (let i = 0; i < g.size; i++) if (Math.abs(g.data[i]!) > Math.abs(g.data[arg]!)) arg = i;
        for (const i of [arg, rng.int(w.size), rng.int(w.size)]) {
          const [up, dn] = evalPlusMinus(() => model.lossAndGrads(ids, opts), w.data, i, H);
          expect(loadSignature(up), `${name}[${i}] +h changed the routing`).toBe(sig);
          expect(loadSignature(dn), `${name}[${i}] −h changed the routing`).toBe(sig);
          const fd = (up.loss.total - dn.loss.total) / (2 * H);
          const an = g.data[i]!;
          const err = Math.abs(fd - an) / Math.max(Math.abs(an), 1e-2 * gmax, 1e-300);
          expect(err, `${name}[${i}]: fd ${fd} vs analytic ${an}`).toBeLessThanOrEqual(1e-6);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(3 * 40);
    });
  }
});

describe('MTP wiring', () => {
  it('concatenates [enorm(embedding) ; hnorm(hidden)] in that order (released eh_proj layout)', () => {
    const config = microConfig({ numNextnPredictLayers: 1 });
    const ids = randomIds(2, 7, config.vocabSize, 5);
    const d = config.hiddenSize;
    const mtpLossWith = (zeroCols: 'emb' | 'hidden', perturbNorm: boolean): number => {
      const weights = randomWeights(config, 'float64', 17);
      const eh = weights.get(`model.layers.${config.numHiddenLayers}.eh_proj.weight`)!;
      for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) eh.data[r * 2 * d + (zeroCols === 'emb' ? c : d + c)] = 0;
      // model.norm reaches the MTP loss only through h⁰ (post-norm), i.e. through the hidden half of eh_proj
      if (perturbNorm) weights.get('model.norm.weight')!.data.forEach((v, i, a) => (a[i] = v * (1 + 0.5 * Math.sin(i))));
      return new DeepSeekV3(config, weights).lossAndGrads(ids, { balanceAlpha: 0 }).loss.mtp;
    };
    // columns d..2d−1 zeroed: the MTP loss ignores h⁰ entirely
    expect(mtpLossWith('hidden', true)).toBe(mtpLossWith('hidden', false));
    // columns 0..d−1 zeroed: h⁰ is the only path, and changing it changes the loss
    expect(Math.abs(mtpLossWith('emb', true) - mtpLossWith('emb', false))).toBeGreaterThan(1e-6);
  });

  it('depth k at position j predicts labels[j+k] (shifted targets), and ignores −100', () => {
    const config = microConfig({ numNextnPredictLayers: 2 });
    const model = new DeepSeekV3(config, randomWeights(config, 'float64', 3));
    const B = 1;
    const T = 6;
    const ids = Int32Array.from(randomIds(1, T + 1, config.vocabSize, 8)[0]!);
    const withOnly = (t: number): number[] => {
      const labels = new Int32Array(T).fill(-100);
      labels[t] = ids[t + 1]!;
      const r = model.lossAndGrads({ ids, B, T, labels }, { balanceAlpha: 0, mtpNormalisation: 'valid_tokens' });
      return r.loss.mtpPerDepth;
    };
    // labels[0] is the main model's target only; labels[1] is depth 1's (j = 0) but not depth 2's; labels[2] both
    expect(withOnly(0)).toEqual([0, 0]);
    const at1 = withOnly(1);
    expect(at1[0]).toBeGreaterThan(0);
    expect(at1[1]).toBe(0);
    expect(withOnly(2).every((l) => l > 0)).toBe(true);
  });
});
