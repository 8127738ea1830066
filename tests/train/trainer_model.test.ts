import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DeepSeekV3, type LossOptions, type TokenBatch } from '../../src/model/model.js';
import { tiny } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import type { DType, Tensor } from '../../src/tensor.js';
import { GradientAccumulator, countTargets } from '../../src/train/accumulate.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { TokenStream, bytesToTokens } from '../../src/train/data.js';
import { Trainer } from '../../src/train/trainer.js';

const corpus = bytesToTokens(readFileSync(new URL('../../data/tiny-corpus.txt', import.meta.url)));
const bits = (t: Tensor): number[] => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));

function makeTrainer(dtype: DType, seed: number): Trainer {
  const model = new DeepSeekV3(tiny, initWeights(tiny, { seed, dtype }));
  return new Trainer(model, {
    data: new TokenStream(corpus, { batchSize: 1, seqLen: 12, order: 'random', seed: 3 }),
    microBatches: 2,
    lr: { kind: 'paper', peak: 3e-3, warmupSteps: 4, decayStartTokens: 100, decayTokens: 200, min: 3e-4, tail: [] },
    biasGamma: 0.01,
    mtpLambda: { initial: 0.3, final: 0.1, switchTokens: 120 },
  });
}

describe('Trainer on the tiny preset (DeepSeekV3 with MTP, balance loss and bias update)', () => {
  it('resume is bit-identical (f32): 10 steps straight vs 5 + save + load + 5', () => {
    const straight = makeTrainer('float32', 1);
    const straightReports = straight.train(10);
    const first = makeTrainer('float32', 1);
    first.train(5);
    const resumed = makeTrainer('float32', 2);
    loadCheckpoint(resumed, saveCheckpoint(first));
    const resumedReports = resumed.train(5);
    let biases = 0;
    for (const [name, t] of straight.model.weights) {
      expect(bits(resumed.model.weights.get(name)!), name).toEqual(bits(t));
      if (name.endsWith('e_score_correction_bias')) {
        biases++;
        expect(Array.from(t.data).some((x) => x !== 0), `${name} moved`).toBe(true);
      }
    }
    expect(biases).toBe(tiny.numHiddenLayers - tiny.firstKDenseReplace + tiny.numNextnPredictLayers);
    expect(resumedReports.map((r) => r.loss)).toEqual(straightReports.slice(5).map((r) => r.loss));
    expect(straightReports[0]!.loads).toHaveLength(biases);
    expect(straightReports[0]!.loss.mtp).toBeGreaterThan(0);
  }, 60_000);
});

describe('gradient accumulation with the real model (f64, SPEC §5.8)', () => {
  const model = new DeepSeekV3(tiny, initWeights(tiny, { seed: 4, dtype: 'float64' }));
  const T = 8;
  const big: TokenBatch = { ids: corpus.slice(1000, 1000 + 4 * (T + 1)), B: 4, T };
  const half = (k: number, b: TokenBatch): TokenBatch => {
    const out: TokenBatch = { ids: b.ids.slice(2 * k * (T + 1), (2 * k + 2) * (T + 1)), B: 2, T };
    if (b.labels !== undefined) out.labels = b.labels.slice(2 * k * T, (2 * k + 2) * T);
    return out;
  };
  const check = (batch: TokenBatch, opts: LossOptions): void => {
    const full = model.lossAndGrads(batch, opts);
    const N = countTargets(batch);
    const acc = new GradientAccumulator(model.weights, [...full.grads.keys()]);
    let loss = 0;
    for (const k of [0, 1]) {
      const micro = half(k, batch);
      const r = model.lossAndGrads(micro, opts);
      acc.add(r.grads, r.targets / N);
      loss += (r.targets / N) * r.loss.total;
    }
    expect(Math.abs(loss - full.loss.total)).toBeLessThanOrEqual(1e-12 * full.loss.total);
    for (const [name, g] of full.grads) {
      let maxRef = 0;
      for (const x of g.data) maxRef = Math.max(maxRef, Math.abs(x));
      const got = acc.grads.get(name)!.data;
      let maxDiff = 0;
      for (let i = 0; i < g.size; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - g.data[i]!));
      // two partial sums re-associated in f64: relative to the tensor's largest entry
      expect(maxDiff, name).toBeLessThanOrEqual(1e-12 * maxRef);
    }
  };

  it('equal micro-batches, MTP and balance loss on: k micro-batches = one batch (≤ 1e-12 relative)', () => {
    check(big, { balanceAlpha: 1e-2 });
  }, 60_000);

  it('ignored targets in unequal numbers (main loss only): N_k/N_global weighting is exact', () => {
    const labels = new Int32Array(4 * T);
    for (let b = 0; b < 4; b++) for (let t = 0; t < T; t++) labels[b * T + t] = big.ids[b * (T + 1) + t + 1]!;
    labels.fill(-100, 0, 11); // rows 0–1 keep 5 of 16 targets, rows 2–3 all 16
    check({ ...big, labels }, { mtp: false, balanceAlpha: 0 });
  }, 60_000);
});
