/**
 * LoRA dropout (issue 13 item 1): y = x·Wᵀ + s·x̃·Aᵀ·Bᵀ with x̃ = x ⊙ m/(1−p) on the LoRA input only, seeded masks,
 * training passes only. Op-level identity with the definition, mask rate, finite differences of dA and dB through
 * the whole model with the masks held fixed (f64), determinism, and errors.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { LoraAdapter, loraParamNames } from '../../src/model/adapters/lora.js';
import { TransformedModel } from '../../src/model/adapters/transform.js';
import { linearForward, type LinearSite } from '../../src/ops/linear.js';
import type { LoraDropoutGemm } from '../../src/ops/lora_branch.js';
import { Random } from '../../src/random.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from '../model/helpers.js';

const config = microConfig();

function adapter(p: number, targets = ['*.self_attn.q_b_proj', '*.self_attn.o_proj', '*.mlp.experts.*.down_proj', 'model.layers.0.mlp.gate_proj', 'model.layers.2.eh_proj']): LoraAdapter {
  const a = LoraAdapter.create(randomWeights(config, 'float64', 13), { targets, r: 3, alpha: 6, seed: 2, dropout: p, dropoutSeed: 9 });
  const rng = new Random(77);
  for (const [name, t] of a.params) if (name.endsWith('lora_B.weight')) rng.fillNormal(t.data, 0.3);
  return a;
}

describe('the Linear op with a LoRA dropout branch', () => {
  it('y = x·W_effᵀ + s·(x̃ − x)·Aᵀ·Bᵀ equals x·Wᵀ + s·x̃·Aᵀ·Bᵀ (f64, 1e-13); about p of the inputs are dropped', () => {
    const [N, inn, out, r, s, p] = [40, 16, 6, 3, 1.5, 0.25];
    const rng = new Random(4);
    const mk = (n: number): Float64Array => {
      const a = new Float64Array(n);
      rng.fillNormal(a);
      return a;
    };
    const [x, W, A, B] = [mk(N * inn), mk(out * inn), mk(r * inn), mk(out * r)];
    const Weff = W.slice();
    for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) for (let k = 0; k < r; k++) Weff[o * inn + i] = Weff[o * inn + i]! + s * B[o * r + k]! * A[k * inn + i]!;
    const draws = new Random(5);
    const gemm: LoraDropoutGemm = { kind: 'lora-dropout', p, uniform: () => draws.uniform(), branches: new Map([['m', { A, B, r, scale: s, dA: new Float64Array(r * inn), dB: new Float64Array(out * r) }]]), factors: new Map() };
    const site: LinearSite = { gemm, name: 'm' };
    const y = linearForward(x, Weff, N, out, inn, site);
    // the masks by definition: the same uniform stream, dropped iff u < p, kept scaled by 1/(1−p)
    const ref = new Random(5);
    const xt = Array.from(x, (v) => (ref.uniform() < p ? 0 : v / (1 - p)));
    let dropped = 0;
    for (let t = 0; t < N; t++) {
      for (let o = 0; o < out; o++) {
        let v = 0;
        for (let i = 0; i < inn; i++) {
          let lora = 0;
          for (let k = 0; k < r; k++) lora += B[o * r + k]! * A[k * inn + i]!;
          v += x[t * inn + i]! * W[o * inn + i]! + s * xt[t * inn + i]! * lora;
        }
        expect(Math.abs(y[t * out + o]! - v)).toBeLessThanOrEqual(1e-13 * Math.max(1, Math.abs(v)));
      }
    }
    for (let i = 0; i < xt.length; i++) if (xt[i] === 0 && x[i] !== 0) dropped++;
    expect(Math.abs(dropped / xt.length - p)).toBeLessThan(0.05); // 640 Bernoulli draws: σ ≈ 0.017
  });
});

describe('LoRA dropout through the whole model (f64)', () => {
  it('dA and dB match central finite differences with the masks held fixed (h = 1e-5, rel. error ≤ 1e-6)', () => {
    const a = adapter(0.3);
    const model = new TransformedModel(config, a);
    const ids = randomIds(2, 7, config.vocabSize, 5);
    const run = (): ReturnType<TransformedModel['lossAndGrads']> => {
      a.dropoutStep = 0; // the same mask stream for every evaluation
      return model.lossAndGrads(ids, { balanceAlpha: 0.05 });
    };
    const base = run();
    const sig = (r: typeof base): string => [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
    const rng = new Random(6);
    let checked = 0;
    for (const [name, p] of a.params) {
      const g = base.grads.get(name)!;
      const gmax = maxAbs(g.data);
      if (gmax === 0) continue; // an expert no token chose
      let arg = 0;
      for (let i = 0; i < g.size; i++) if (Math.abs(g.data[i]!) > Math.abs(g.data[arg]!)) arg = i;
      for (const i of [arg, rng.int(p.size)]) {
        const [up, dn] = evalPlusMinus(run, p.data, i, 1e-5);
        expect(sig(up)).toBe(sig(base));
        expect(sig(dn)).toBe(sig(base));
        const fd = (up.loss.total - dn.loss.total) / 2e-5;
        expect(Math.abs(fd - g.data[i]!) / Math.max(Math.abs(g.data[i]!), 1e-2 * gmax), `${name}[${i}]: fd ${fd} vs ${g.data[i]}`).toBeLessThanOrEqual(1e-6);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2 * 12);
  });

  it('seeded: the same step gives the same loss, the next step other masks; the forward (inference) has no dropout; p = 0 is the plain adapter', () => {
    const a = adapter(0.3);
    const plain = adapter(0);
    const model = new TransformedModel(config, a);
    const ids = randomIds(1, 6, config.vocabSize, 3);
    a.dropoutStep = 4;
    const l4 = model.lossAndGrads(ids).loss.total;
    expect(a.dropoutStep).toBe(5);
    const l5 = model.lossAndGrads(ids).loss.total;
    a.dropoutStep = 4;
    expect(model.lossAndGrads(ids).loss.total).toBe(l4);
    expect(l5).not.toBe(l4);
    const ref = new TransformedModel(config, plain);
    expect(ref.lossAndGrads(ids).loss.total).not.toBe(l4);
    expect(Array.from(model.forward(ids).logits.data)).toEqual(Array.from(ref.forward(ids).logits.data));
    expect(plain.trainingGemm()).toBeUndefined();
    // dA, dB of the branch are consumed by one backward: grads of A/B only, under the PEFT names
    expect([...model.lossAndGrads(ids).grads.keys()]).toContain(loraParamNames('model.layers.2.eh_proj').A);
  });

  it('errors: lm_head targeted with dropout, absorbed attention, p outside [0, 1)', () => {
    const withHead = LoraAdapter.create(randomWeights(config, 'float64', 13), { targets: ['lm_head'], r: 2, dropout: 0.1 });
    expect(() => new TransformedModel(config, withHead).lossAndGrads([[1, 2, 3]])).toThrow(/'lm_head' is targeted/);
    expect(() => new TransformedModel(config, adapter(0.1)).lossAndGrads([[1, 2, 3]], { attn: 'absorb' })).toThrow(/needs attn 'naive'/);
    expect(() => LoraAdapter.create(randomWeights(config, 'float64', 13), { targets: ['lm_head'], r: 2, dropout: 1 })).toThrow(InputError);
  });

  it('lora_dropout of a PEFT adapter_config.json drives training', () => {
    const a = adapter(0);
    const { safetensors, config: text } = a.toPeft();
    const cfg = { ...(JSON.parse(text) as Record<string, unknown>), lora_dropout: 0.2 };
    const b = LoraAdapter.fromPeft(a.base, safetensors, JSON.stringify(cfg), undefined, { dropoutSeed: 1 });
    expect(b.dropout).toBe(0.2);
    expect(b.trainingGemm()!.p).toBe(0.2);
    expect(JSON.parse(b.toPeft().config).lora_dropout).toBe(0.2);
  });
});
