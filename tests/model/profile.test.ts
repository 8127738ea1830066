/**
 * The `profile` hook of forward and lossAndGrads (used by the benchmarks): it reports every phase the model
 * runs, once per block half per layer, and changes no result.
 */
import { describe, expect, it } from 'vitest';
import type { ModelPhase } from '../../src/model/block.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';

function tinyModel(): DeepSeekV3 {
  const config = getPreset('tiny');
  return new DeepSeekV3(config, initWeights(config, { seed: 3, dtype: 'float64' }));
}

function recorder(): { calls: Map<ModelPhase, number>; profile: (phase: ModelPhase, ms: number) => void } {
  const calls = new Map<ModelPhase, number>();
  return {
    calls,
    profile: (phase, ms) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      calls.set(phase, (calls.get(phase) ?? 0) + 1);
    },
  };
}

describe('profile hook', () => {
  it('lossAndGrads reports each phase (block halves once per layer) and returns the same loss and gradients', () => {
    const model = tinyModel();
    const cfg = model.config;
    const ids = [
      [1, 5, 9, 2, 7, 3],
      [4, 4, 8, 0, 6, 2],
    ];
    const plain = model.lossAndGrads(ids);
    const { calls, profile } = recorder();
    const timed = model.lossAndGrads(ids, { profile });
    expect(timed.loss).toEqual(plain.loss);
    for (const [name, g] of plain.grads) expect(timed.grads.get(name)!.data).toEqual(g.data);

    const dense = cfg.firstKDenseReplace;
    const moe = cfg.numHiddenLayers - dense;
    const expected: [ModelPhase, number][] = [
      ['grads.zero', 1],
      ['embedding.forward', 1],
      ['attention.forward', cfg.numHiddenLayers],
      ['loss', 1],
      ['balance', 1],
      ['head.forward', 1],
      ['head.backward', 1],
      ['attention.backward', cfg.numHiddenLayers],
      ['embedding.backward', 1],
    ];
    if (dense > 0) expected.push(['mlp.forward', dense], ['mlp.backward', dense]);
    if (moe > 0) expected.push(['moe.forward', moe], ['moe.backward', moe]);
    if (cfg.numNextnPredictLayers > 0) expected.push(['mtp.forward', 1], ['mtp.backward', 1]);
    expect(new Map(expected)).toEqual(calls);
  });

  it('forward reports the embedding, the block halves and the head, and returns the same logits', () => {
    const model = tinyModel();
    const ids = [[3, 1, 4, 1, 5]];
    const { calls, profile } = recorder();
    expect(model.forward(ids, { profile }).logits.data).toEqual(model.forward(ids).logits.data);
    expect(calls.get('embedding.forward')).toBe(1);
    expect(calls.get('head.forward')).toBe(1);
    expect(calls.get('attention.forward')).toBe(model.config.numHiddenLayers);
    expect(calls.has('loss')).toBe(false);
  });
});
