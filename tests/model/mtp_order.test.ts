/**
 * MTP concat order (issue 13 item 4): `mtpConcatOrder: 'hidden-first'` feeds eh_proj [hnorm(h); enorm(Emb)] (the
 * tech report's equation 21) instead of the released weights' [enorm(Emb); hnorm(h)].
 * Definition used here: hidden-first with eh_proj W' = [W_h | W_e] computes what embedding-first computes with
 * W = [W_e | W_h]. Plus a finite-difference check of the hidden-first gradients (f64).
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { DeepSeekV3, type DeepSeekV3Options } from '../../src/model/model.js';
import type { MTPConcatOrder } from '../../src/model/mtp.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from './helpers.js';

const config = microConfig({ numNextnPredictLayers: 2 });
const d = config.hiddenSize;
const ehNames = [2, 3].map((i) => `model.layers.${i}.eh_proj.weight`);

/** [out, 2d] with the two column halves exchanged. */
function swapHalves(w: Tensor): Tensor {
  const out = Tensor.zeros(w.shape, w.dtype);
  for (let r = 0; r < d; r++) {
    out.data.set(w.data.subarray(r * 2 * d + d, r * 2 * d + 2 * d), r * 2 * d);
    out.data.set(w.data.subarray(r * 2 * d, r * 2 * d + d), r * 2 * d + d);
  }
  return out;
}

function models(): { emb: DeepSeekV3; hid: DeepSeekV3; hidSameWeights: DeepSeekV3 } {
  const w = randomWeights(config, 'float64', 41);
  const swapped = new Map(w);
  for (const n of ehNames) swapped.set(n, swapHalves(w.get(n)!));
  const opt = (o: MTPConcatOrder): DeepSeekV3Options => ({ mtpConcatOrder: o });
  return { emb: new DeepSeekV3(config, w, opt('embedding-first')), hid: new DeepSeekV3(config, swapped, opt('hidden-first')), hidSameWeights: new DeepSeekV3(config, w, opt('hidden-first')) };
}

describe('mtpConcatOrder', () => {
  it('default is embedding-first; a bad value is an InputError', () => {
    const w = randomWeights(config, 'float64', 1);
    expect(new DeepSeekV3(config, w).mtpConcatOrder).toBe('embedding-first');
    expect(() => new DeepSeekV3(config, w, { mtpConcatOrder: 'embedding-last' as MTPConcatOrder })).toThrow(InputError);
    expect(() => new DeepSeekV3(config, w, { mtpConcatOrder: 'embedding-last' as MTPConcatOrder })).toThrow(/mtpConcatOrder/);
  });

  it('hidden-first with swapped eh_proj halves == embedding-first: MTP losses, gradients (eh_proj swapped back)', () => {
    const { emb, hid, hidSameWeights } = models();
    const ids = randomIds(2, 8, config.vocabSize, 3);
    const a = emb.lossAndGrads(ids);
    const b = hid.lossAndGrads(ids);
    // the eh_proj dot products run over the 2d columns in another order: f64 re-association only
    expect(b.loss.mtpPerDepth.length).toBe(2);
    for (let k = 0; k < 2; k++) expect(Math.abs(b.loss.mtpPerDepth[k]! - a.loss.mtpPerDepth[k]!)).toBeLessThanOrEqual(1e-13 * a.loss.mtpPerDepth[k]!);
    for (const [name, ga] of a.grads) {
      const gb = ehNames.includes(name) ? swapHalves(b.grads.get(name)!) : b.grads.get(name)!;
      let diff = 0;
      for (let i = 0; i < ga.size; i++) diff = Math.max(diff, Math.abs(ga.data[i]! - gb.data[i]!));
      expect(diff, name).toBeLessThanOrEqual(1e-12 * Math.max(maxAbs(ga.data), 1e-300));
    }
    // the option does change the function: same weights, other order
    expect(Math.abs(hidSameWeights.lossAndGrads(ids).loss.mtp - a.loss.mtp)).toBeGreaterThan(1e-6);
  });

  it('speculative decoding uses the order too: drafts of hidden-first + swapped weights == embedding-first', () => {
    const { emb, hid, hidSameWeights } = models();
    const o = { speculative: 'mtp', temperature: 1, seed: 2, maxNewTokens: 12 } as const;
    const a = emb.generate([5, 6, 7], o);
    expect(hid.generate([5, 6, 7], o).tokens).toEqual(a.tokens);
    expect(hidSameWeights.generate([5, 6, 7], o).tokens).not.toEqual(a.tokens); // q differs, so the sampled tokens do
  });

  it('hidden-first gradients match central finite differences (f64, h = 1e-5, rel. error ≤ 1e-6)', () => {
    const { hidSameWeights: model } = models();
    const ids = randomIds(2, 7, config.vocabSize, 5);
    const opts = { balanceAlpha: 0.05 };
    const base = model.lossAndGrads(ids, opts);
    const sig = (r: typeof base): string => [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
    const rng = new Random(7);
    const names = [...ehNames, 'model.layers.2.enorm.weight', 'model.layers.2.hnorm.weight', 'model.layers.3.hnorm.weight', 'model.embed_tokens.weight', 'model.layers.1.self_attn.o_proj.weight'];
    for (const name of names) {
      const w = model.weights.get(name)!;
      const g = base.grads.get(name)!;
      const gmax = maxAbs(g.data);
      expect(gmax, name).toBeGreaterThan(0);
      let arg = 0;
      for (let i = 0; i < g.size; i++) if (Math.abs(g.data[i]!) > Math.abs(g.data[arg]!)) arg = i;
      // for eh_proj also one element from each half (embedding columns d..2d−1, hidden columns 0..d−1)
      const extra = ehNames.includes(name) ? [rng.int(d) * 2 * d + rng.int(d), rng.int(d) * 2 * d + d + rng.int(d)] : [rng.int(w.size)];
      for (const i of [arg, ...extra]) {
        const [up, dn] = evalPlusMinus(() => model.lossAndGrads(ids, opts), w.data, i, 1e-5);
        expect(sig(up)).toBe(sig(base));
        expect(sig(dn)).toBe(sig(base));
        const fd = (up.loss.total - dn.loss.total) / 2e-5;
        const an = g.data[i]!;
        expect(Math.abs(fd - an) / Math.max(Math.abs(an), 1e-2 * gmax), `${name}[${i}]: fd ${fd} vs ${an}`).toBeLessThanOrEqual(1e-6);
      }
    }
  });
});
