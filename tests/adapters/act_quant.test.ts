/**
 * Activation fake quantization per token (issue 13 item 2, docs/components/fake-quant.md): at the selected Linear
 * sites y = x̂·Wᵀ with x̂ = dequant(quant_int8(x)) one scale per token; backward dW += dyᵀ·x̂ and dx += dy·W (STE),
 * or dy·W only where x was not clipped. Op-level checks against the definition written here, and whole-model
 * finite differences for the weights whose gradient the quantizer does not cut (f64).
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { actQuantGemm } from '../../src/model/adapters/act_quant.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { linearBackward, linearForward, type LinearSite } from '../../src/ops/linear.js';
import { Random } from '../../src/random.js';
import { allocate, type DType, type FloatArray } from '../../src/tensor.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from '../model/helpers.js';

/** Per-token symmetric INT8 by definition: s = r(r(clip·max|x_t|)/127), x̂ = r(clamp(rne(r(x/s)), ±127)·s). */
function referenceXhat(x: FloatArray, rows: number, cols: number, clip = 1): { xq: number[]; clipped: boolean[] } {
  const r = x instanceof Float32Array ? Math.fround : (v: number): number => v;
  const rne = (v: number): number => {
    const f = Math.floor(v);
    return v - f < 0.5 ? f : v - f > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  };
  const xq: number[] = [];
  const clipped: boolean[] = [];
  for (let t = 0; t < rows; t++) {
    const row = Array.from(x.subarray(t * cols, (t + 1) * cols));
    const a = r(clip * Math.max(...row.map(Math.abs)));
    const s = a === 0 ? 1 : r(a / 127);
    for (const v of row) {
      const q = rne(r(v / s));
      clipped.push(q < -127 || q > 127);
      xq.push(r(Math.min(127, Math.max(-127, q)) * s));
    }
  }
  return { xq, clipped };
}

function rand(dtype: DType, n: number, seed: number): FloatArray {
  const a = allocate(dtype, n);
  new Random(seed).fillNormal(a);
  return a;
}

describe('the Linear op with an act-quant site', () => {
  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`forward = x̂·Wᵀ; backward dW = dyᵀ·x̂, dx = dy·W (STE), clipped STE zero where clipped (${dtype})`, () => {
      const [N, inn, out] = [5, 12, 7];
      const x = rand(dtype, N * inn, 1);
      const W = rand(dtype, out * inn, 2);
      const dy = rand(dtype, N * out, 3);
      for (const clip of [1, 0.5]) {
        const ste = clip === 1 ? 'identity' : 'clipped';
        const site: LinearSite = { name: 'm', gemm: { kind: 'act-quant', scheme: { kind: 'int8', clip }, ste, select: (n) => n === 'm' } };
        const ref = referenceXhat(x, N, inn, clip);
        const xhat = allocate(dtype, N * inn);
        xhat.set(ref.xq);
        expect(Array.from(linearForward(x, W, N, out, inn, site))).toEqual(Array.from(linearForward(xhat, W, N, out, inn)));
        const dW = allocate(dtype, out * inn);
        const dx = linearBackward(x, W, dy, dW, N, out, inn, undefined, site);
        const dWref = allocate(dtype, out * inn);
        const dxPlain = linearBackward(xhat, W, dy, dWref, N, out, inn);
        expect(Array.from(dW)).toEqual(Array.from(dWref));
        expect(Array.from(dx)).toEqual(Array.from(dxPlain).map((v, i) => (ste === 'clipped' && ref.clipped[i] ? 0 : v)));
        if (clip < 1) expect(ref.clipped.some((c) => c)).toBe(true);
        // a site that is not selected runs exact
        const other: LinearSite = { ...site, name: 'other' };
        expect(Array.from(linearForward(x, W, N, out, inn, other))).toEqual(Array.from(linearForward(x, W, N, out, inn)));
      }
    });
  }
});

describe('DeepSeekV3 with actQuant (f64)', () => {
  const config = microConfig();
  const weights = randomWeights(config, 'float64', 21);
  const model = new DeepSeekV3(config, weights);
  const ids = randomIds(2, 6, config.vocabSize, 7);
  const actQuant = { targets: 'model.layers.1.mlp.experts.*.down_proj' };

  it('gradients of the weights downstream of (or at) the quantized inputs match finite differences', () => {
    const opts = { actQuant, balanceAlpha: 0.05 };
    const base = model.lossAndGrads(ids, opts);
    const exact = model.lossAndGrads(ids, { balanceAlpha: 0.05 });
    // the quantization changes the loss, a little (INT8 per token)
    expect(base.loss.total).not.toBe(exact.loss.total);
    expect(Math.abs(base.loss.total - exact.loss.total)).toBeLessThan(1e-2 * exact.loss.total);
    const sig = (r: typeof base): string => [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
    const names = ['model.layers.1.mlp.experts.0.down_proj.weight', 'model.layers.1.mlp.experts.3.down_proj.weight', 'model.norm.weight', 'lm_head.weight', 'model.layers.2.eh_proj.weight'];
    const rng = new Random(2);
    let checked = 0;
    for (const name of names) {
      const w = weights.get(name)!;
      const g = base.grads.get(name)!;
      const gmax = maxAbs(g.data);
      if (gmax === 0) continue; // an expert no token chose
      let arg = 0;
      for (let i = 0; i < g.size; i++) if (Math.abs(g.data[i]!) > Math.abs(g.data[arg]!)) arg = i;
      for (const i of [arg, rng.int(w.size)]) {
        const [up, dn] = evalPlusMinus(() => model.lossAndGrads(ids, opts), w.data, i, 1e-5);
        expect(sig(up)).toBe(sig(base));
        expect(sig(dn)).toBe(sig(base));
        const fd = (up.loss.total - dn.loss.total) / 2e-5;
        expect(Math.abs(fd - g.data[i]!) / Math.max(Math.abs(g.data[i]!), 1e-2 * gmax), `${name}[${i}]`).toBeLessThanOrEqual(1e-6);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it('forward applies it too, and cached decode equals the full forward (per-token scales)', () => {
    const row = randomIds(1, 6, config.vocabSize, 8)[0]!;
    const full = model.forward([row], { actQuant: { targets: ['*.self_attn.o_proj', '*.mlp.*'] } });
    expect(Array.from(full.logits.data)).not.toEqual(Array.from(model.forward([row]).logits.data));
    const caches = model.createCaches('naive', 1, 8);
    const aq = { targets: ['*.self_attn.o_proj', '*.mlp.*'] };
    model.forward([row.slice(0, 5)], { actQuant: aq, caches, startPos: 0, logits: 'none' });
    const step = model.forward([row.slice(5)], { actQuant: aq, caches, startPos: 5, logits: 'last' });
    const V = config.vocabSize;
    const ref = full.logits.data.subarray(5 * V, 6 * V);
    for (let i = 0; i < V; i++) expect(Math.abs(step.logits.data[i]! - ref[i]!)).toBeLessThanOrEqual(1e-12);
  });

  it('option errors are InputErrors', () => {
    expect(() => model.lossAndGrads(ids, { actQuant, numerics: 'fp8-train' })).toThrow(/actQuant runs with numerics 'exact' only/);
    expect(() => model.forward(ids, { actQuant: { targets: '*.kv_b_proj' }, attn: 'absorb' })).toThrow(/absorbed attention path/);
    expect(() => model.forward(ids, { actQuant: { targets: '*.nothing' } })).toThrow(/glob '\*\.nothing' matches no Linear module/);
    expect(() => actQuantGemm(weights, { targets: '*.o_proj', scheme: { kind: 'fp8-block' } as never }, 'naive', 'x')).toThrow(InputError);
    expect(() => model.forward(ids, { actQuant, numerics: 'official-bf16' })).toThrow(/'exact' profile only/);
  });
});
