/**
 * The demo's self-checks pass on a correct model and fail on a broken one (negative controls), and the
 * held-out loss is the plain mean cross-entropy.
 */
import { describe, expect, it } from 'vitest';
import { checkAttentionPaths, checkGradients, checkSpeculativeGreedy, checkTraceRoundTrip, toFloat64Model } from '../../src/demo/checks.js';
import { heldOutLoss } from '../../src/demo/evaluate.js';
import { DeepSeekV3, type LossOptions, type ModelForwardOptions, type TokenBatch, type TokenInput } from '../../src/model/model.js';
import { getPreset } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { Random } from '../../src/random.js';

const config = getPreset('tiny');
// std 0.05 instead of 0.006 so the random model's gradients and routing are far from degenerate
const model = new DeepSeekV3(config, initWeights(config, { seed: 3, std: 0.05 }));

function randomBatch(B: number, T: number, seed: number): TokenBatch {
  const rng = new Random(seed);
  return { ids: Int32Array.from({ length: B * (T + 1) }, () => rng.int(256)), B, T };
}

describe('demo self-checks', () => {
  it('naive vs absorbed attention passes; a perturbed absorbed path fails', () => {
    const ids = randomBatch(2, 24, 1).ids.subarray(0, 48);
    const ok = checkAttentionPaths(model, ids, 2, 24);
    expect(ok.passed, ok.detail).toBe(true);
    class Skewed extends DeepSeekV3 {
      override forward(x: TokenInput, o: ModelForwardOptions = {}) {
        const r = super.forward(x, o);
        if (o.attn === 'absorb') r.logits.data[7]! += 1e-3 * Math.abs(r.logits.data[7]!) + 1e-3;
        return r;
      }
    }
    const bad = checkAttentionPaths(new Skewed(config, model.weights), ids, 2, 24);
    expect(bad.passed).toBe(false);
    expect(bad.value).toBeGreaterThan(bad.tolerance);
  });

  it('f64 gradient check passes; a gradient off by 1e-4 relative fails', () => {
    const batch = randomBatch(1, 10, 2);
    const ok = checkGradients(model, batch, { tensors: 6, seed: 1 });
    expect(ok.passed, ok.detail).toBe(true);
    expect(ok.checked + ok.skipped).toBe(12);
    expect(ok.checked).toBeGreaterThan(6);
    const m64 = toFloat64Model(model);
    expect(m64.dtype).toBe('float64');
    class Wrong extends DeepSeekV3 {
      override lossAndGrads(b: TokenBatch, o: LossOptions = {}) {
        const r = super.lossAndGrads(b, o);
        for (const g of r.grads.values()) g.data.forEach((v, i, a) => (a[i] = v * (1 + 1e-4)));
        return r;
      }
    }
    const bad = checkGradients(new Wrong(config, m64.weights), batch, { tensors: 6, seed: 1 });
    expect(bad.passed).toBe(false);
  });

  it('a trace round-trips through verify, and a perturbed router weight is caught in its layer', () => {
    const r = checkTraceRoundTrip(model, randomBatch(1, 8, 3));
    expect(r.passed, r.detail).toBe(true);
    expect(r.firstDivergent).toBeNull();
    expect(r.tensors).toBeGreaterThan(100);
    expect(r.perturbed.firstDivergent).toMatch(/^model\.layers\.1\./);
    // the weights are restored after the control
    expect(Buffer.compare(checkTraceRoundTrip(model, randomBatch(1, 8, 3)).bytes, r.bytes)).toBe(0);
  });

  it('speculative decoding with MTP equals plain greedy', () => {
    const r = checkSpeculativeGreedy(model, [72, 105], 12);
    expect(r.passed, r.detail).toBe(true);
    expect(r.tokens.length).toBe(12);
    expect(r.drafted).toBeGreaterThan(0);
  });
});

describe('heldOutLoss', () => {
  it('is the mean over windows of −log softmax(logits)[target], computed here in f64 from forward', () => {
    const rng = new Random(9);
    const tokens = Int32Array.from({ length: 3 * 16 + 5 }, () => rng.int(256));
    const got = heldOutLoss(model, tokens, { seqLen: 16, batch: 2 });
    let sum = 0;
    for (let w = 0; w < 3; w++) {
      const logits = model.forward(tokens.slice(w * 16, w * 16 + 16), { B: 1, T: 16 }).logits.data;
      for (let t = 0; t < 16; t++) {
        const row = Array.from(logits.subarray(t * 256, t * 256 + 256));
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
        sum += lse - row[tokens[w * 16 + t + 1]!]!;
      }
    }
    // f32 logits, f32 vs f64 log-sum-exp over 256 entries: ~1e-6 relative
    expect(got).toBeCloseTo(sum / 48, 5);
  });

  it('is ln 256 for the default (std 0.006) init, whose logits are nearly 0', () => {
    const m = new DeepSeekV3(config, initWeights(config, { seed: 1 }));
    const rng = new Random(4);
    const tokens = Int32Array.from({ length: 200 }, () => rng.int(256));
    // |logit| ≲ 0.01 → CE within ~0.01 of ln V
    expect(Math.abs(heldOutLoss(m, tokens, { seqLen: 32 }) - Math.log(256))).toBeLessThan(0.01);
  });
});
