/**
 * LoRA (issue 13 item 1, docs/components/lora.md): W_eff = W + (α/r)·B·A on Linear weights chosen by glob, A and B
 * trained, W frozen. Finite differences of dL/dA and dL/dB (f64), merged == unmerged forward, the PEFT layout
 * (names, adapter_config.json, round trip, PEFT's target_modules rules), frozen weights with no optimizer state.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, InputError } from '../../src/errors.js';
import { fromFloatArray, parseSafetensors, serializeSafetensors, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { LoraAdapter, loraParamNames, type PeftLoraConfig } from '../../src/model/adapters/lora.js';
import { loadLoraAdapter, saveLoraAdapter } from '../../src/model/adapters/lora_node.js';
import { linearModules, TransformedModel } from '../../src/model/adapters/transform.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { Random } from '../../src/random.js';
import type { DType } from '../../src/tensor.js';
import { bytesToTokens, TokenStream } from '../../src/train/data.js';
import { Trainer } from '../../src/train/trainer.js';
import { maxAbs } from '../helpers/close.js';
import { evalPlusMinus } from '../helpers/finite_difference.js';
import { microConfig, randomIds, randomWeights } from '../model/helpers.js';

// layer 0 dense, layer 1 MoE (4 experts), layer 2 the MTP module
const config = microConfig();
const TARGETS = ['*.self_attn.q_b_proj', '*.mlp.experts.*.down_proj', 'lm_head', 'model.layers.2.eh_proj', 'model.layers.0.mlp.up_proj'];
const bits = (a: ArrayLike<number>): number[] => Array.from(a);

/** An adapter with B drawn too (a fresh one has B = 0, which would leave dA = 0). */
function adapter(dtype: DType, seed = 1, opts: { r?: number; alpha?: number } = {}): LoraAdapter {
  const base = randomWeights(config, dtype, 11);
  const a = LoraAdapter.create(base, { targets: TARGETS, r: opts.r ?? 3, alpha: opts.alpha ?? 6, seed });
  const rng = new Random(seed + 100);
  for (const [name, t] of a.params) if (name.endsWith('lora_B.weight')) rng.fillNormal(t.data, 0.3);
  return a;
}

describe('LoraAdapter.create', () => {
  it('targets the Linear modules matched by the globs; PEFT names, shapes [r, in] and [out, r]; B = 0 leaves the model unchanged', () => {
    const base = randomWeights(config, 'float64', 11);
    const a = LoraAdapter.create(base, { targets: TARGETS, r: 3 });
    expect([...a.modules].sort()).toEqual(
      [
        'model.layers.0.self_attn.q_b_proj',
        'model.layers.0.mlp.up_proj',
        'model.layers.1.self_attn.q_b_proj',
        ...[0, 1, 2, 3].map((e) => `model.layers.1.mlp.experts.${e}.down_proj`),
        'lm_head',
        'model.layers.2.eh_proj',
        'model.layers.2.self_attn.q_b_proj',
        ...[0, 1, 2, 3].map((e) => `model.layers.2.mlp.experts.${e}.down_proj`),
      ].sort(),
    );
    expect(a.scale).toBe(8 / 3); // PEFT's default lora_alpha = 8
    const q = base.get('model.layers.1.self_attn.q_b_proj.weight')!;
    const names = loraParamNames('model.layers.1.self_attn.q_b_proj');
    expect(names.A).toBe('base_model.model.model.layers.1.self_attn.q_b_proj.lora_A.weight');
    expect(a.params.get(names.A)!.shape).toEqual([3, q.shape[1]]);
    expect(a.params.get(names.B)!.shape).toEqual([q.shape[0], 3]);
    // A ~ U(−1/√in, 1/√in), B = 0
    const A = a.params.get(names.A)!.data;
    expect(maxAbs(A)).toBeLessThanOrEqual(1 / Math.sqrt(q.shape[1]!));
    expect(maxAbs(A)).toBeGreaterThan(0);
    expect(maxAbs(a.params.get(names.B)!.data)).toBe(0);
    const ids = randomIds(2, 5, config.vocabSize, 1);
    expect(bits(new TransformedModel(config, a).forward(ids).logits.data)).toEqual(bits(new DeepSeekV3(config, base).forward(ids).logits.data));
  });

  it('linearModules excludes the embedding, the router and the norms; a glob matching no Linear module is an InputError', () => {
    const base = randomWeights(config, 'float64', 11);
    const lin = linearModules(base);
    expect(lin).toContain('lm_head');
    expect(lin).toContain('model.layers.1.mlp.shared_experts.gate_proj');
    expect(lin.some((m) => m.includes('embed_tokens') || m.endsWith('mlp.gate') || m.endsWith('norm'))).toBe(false);
    expect(() => LoraAdapter.create(base, { targets: ['*.q_b_proj', '*.mlp.gate'], r: 2 })).toThrow(InputError);
    expect(() => LoraAdapter.create(base, { targets: '*.mlp.gate', r: 2 })).toThrow(/glob '\*\.mlp\.gate' matches no Linear module/);
    expect(() => LoraAdapter.create(base, { targets: '*.q_b_proj', r: 0 })).toThrow(/rank r must be a positive integer/);
    expect(() => LoraAdapter.create(base, { targets: '*.q_b_proj', r: 2, alpha: -1 })).toThrow(/alpha/);
  });
});

describe('LoRA gradients', () => {
  it('dL/dA and dL/dB match central finite differences (f64, h = 1e-5, rel. error ≤ 1e-6) for every targeted module', () => {
    const a = adapter('float64');
    const model = new TransformedModel(config, a);
    const ids = randomIds(2, 7, config.vocabSize, 5);
    const opts = { balanceAlpha: 0.05 };
    const base = model.lossAndGrads(ids, opts);
    expect([...base.grads.keys()].sort()).toEqual([...a.params.keys()].sort()); // A and B only
    expect(base.loads).toEqual([]); // the router biases belong to the frozen base
    const sig = (r: typeof base): string => [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
    const rng = new Random(3);
    let checked = 0;
    for (const [name, p] of a.params) {
      const g = base.grads.get(name)!;
      const gmax = maxAbs(g.data);
      if (name.includes('experts')) {
        // an expert no token chose has no gradient at all
        if (gmax === 0) continue;
      } else expect(gmax, name).toBeGreaterThan(0);
      let arg = 0;
      for (let i = 0; i < g.size; i++) if (Math.abs(g.data[i]!) > Math.abs(g.data[arg]!)) arg = i;
      for (const i of [arg, rng.int(p.size)]) {
        const [up, dn] = evalPlusMinus(() => model.lossAndGrads(ids, opts), p.data, i, 1e-5);
        expect(sig(up)).toBe(sig(base));
        expect(sig(dn)).toBe(sig(base));
        const fd = (up.loss.total - dn.loss.total) / 2e-5;
        const an = g.data[i]!;
        expect(Math.abs(fd - an) / Math.max(Math.abs(an), 1e-2 * gmax), `${name}[${i}]: fd ${fd} vs ${an}`).toBeLessThanOrEqual(1e-6);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2 * 20);
  });

  it('the chain rule by hand: dA = s·Bᵀ·dW_eff, dB = s·dW_eff·Aᵀ from the merged model gradient', () => {
    const a = adapter('float64');
    const ids = randomIds(1, 6, config.vocabSize, 6);
    const r = new TransformedModel(config, a).lossAndGrads(ids);
    const merged = new DeepSeekV3(config, a.effectiveWeights()).lossAndGrads(ids);
    const m = 'model.layers.1.self_attn.q_b_proj';
    const dW = merged.grads.get(`${m}.weight`)!;
    const { A, B } = a.factors(m);
    const [out, inDim] = dW.shape as [number, number];
    for (let i = 0; i < a.r; i++) {
      for (let j = 0; j < inDim; j++) {
        let s = 0;
        for (let o = 0; o < out; o++) s += B.data[o * a.r + i]! * dW.data[o * inDim + j]!;
        expect(r.grads.get(loraParamNames(m).A)!.data[i * inDim + j]).toBeCloseTo(a.scale * s, 12);
      }
    }
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < a.r; i++) {
        let s = 0;
        for (let j = 0; j < inDim; j++) s += dW.data[o * inDim + j]! * A.data[i * inDim + j]!;
        expect(r.grads.get(loraParamNames(m).B)!.data[o * a.r + i]).toBeCloseTo(a.scale * s, 12);
      }
    }
  });
});

describe('merge / unmerge', () => {
  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`merged forward == unmerged forward bit for bit, unmerge restores W bit for bit (${dtype}, both attention paths)`, () => {
      const a = adapter(dtype);
      const ids = randomIds(2, 6, config.vocabSize, 2);
      const before = new Map([...a.base].map(([n, t]) => [n, bits(t.data)]));
      const lora = new TransformedModel(config, a);
      const unmerged = { naive: lora.forward(ids, { attn: 'naive' }), absorb: lora.forward(ids, { attn: 'absorb' }) };
      a.merge();
      expect(a.isMerged).toBe(true);
      const plain = new DeepSeekV3(config, a.base);
      expect(bits(plain.forward(ids, { attn: 'naive' }).logits.data)).toEqual(bits(unmerged.naive.logits.data));
      expect(bits(plain.forward(ids, { attn: 'absorb' }).logits.data)).toEqual(bits(unmerged.absorb.logits.data));
      // the adapter changes the function (B ≠ 0)
      expect(bits(a.base.get('lm_head.weight')!.data)).not.toEqual(before.get('lm_head.weight'));
      expect(() => a.effectiveWeights()).toThrow(/merged/);
      expect(() => a.merge()).toThrow(/already merged/);
      a.unmerge();
      for (const [n, t] of a.base) expect(bits(t.data), n).toEqual(before.get(n));
      expect(() => a.unmerge()).toThrow(/not merged/);
    });
  }
});

describe('PEFT layout', () => {
  it('round trip through adapter_model.safetensors + adapter_config.json (files on disk): same modules, r, α, bits', () => {
    const a = adapter('float64', 4);
    const dir = mkdtempSync(join(tmpdir(), 'dsv3-lora-'));
    try {
      const paths = saveLoraAdapter(dir, a, { baseModel: 'tiny-test' });
      const cfg = JSON.parse(readFileSync(paths.config, 'utf8')) as PeftLoraConfig;
      expect(cfg).toMatchObject({ peft_type: 'LORA', r: 3, lora_alpha: 6, lora_dropout: 0, bias: 'none', use_rslora: false, base_model_name_or_path: 'tiny-test' });
      expect(cfg.target_modules).toEqual([...a.modules]);
      const file = parseSafetensors(new Uint8Array(readFileSync(paths.weights)));
      expect([...file.tensors.keys()].sort()).toEqual([...a.params.keys()].sort());
      expect(file.tensors.get(loraParamNames('lm_head').B)!).toMatchObject({ dtype: 'F64', shape: [config.vocabSize, 3] });
      const b = loadLoraAdapter(dir, a.base);
      expect(b.modules).toEqual(a.modules);
      expect([b.r, b.alpha, b.scale]).toEqual([a.r, a.alpha, a.scale]);
      for (const [n, t] of a.params) expect(bits(b.params.get(n)!.data), n).toEqual(bits(t.data));
      const ids = randomIds(1, 5, config.vocabSize, 9);
      expect(bits(new TransformedModel(config, b).forward(ids).logits.data)).toEqual(bits(new TransformedModel(config, a).forward(ids).logits.data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads PEFT's target_modules rules: suffix list, full-match regex, 'all-linear'; BF16 factors", () => {
    const base = randomWeights(config, 'float32', 11);
    const selected = (tm: unknown): string[] => {
      const modules = linearModules(base).filter((m) =>
        tm === 'all-linear' ? m !== 'lm_head' : typeof tm === 'string' ? new RegExp(`^(?:${tm})$`).test(m) : (tm as string[]).some((t) => m === t || m.endsWith(`.${t}`)),
      );
      const tensors = new Map<string, SafetensorsTensor>();
      const rng = new Random(5);
      for (const m of modules) {
        const [out, inDim] = base.get(`${m}.weight`)!.shape as [number, number];
        const n = loraParamNames(m);
        tensors.set(n.A, fromFloatArray(Array.from({ length: 2 * inDim }, () => rng.normal()), [2, inDim], 'BF16'));
        tensors.set(n.B, fromFloatArray(Array.from({ length: out * 2 }, () => rng.normal()), [out, 2], 'BF16'));
      }
      const a = LoraAdapter.fromPeft(base, serializeSafetensors(tensors), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: tm, lora_dropout: 0.05 }));
      expect(a.dropout).toBe(0.05);
      // BF16 values are exact in f32
      const first = loraParamNames(a.modules[0]!).A;
      expect(bits(a.params.get(first)!.data)).toEqual(decodeBf16(tensors.get(first)!));
      return [...a.modules];
    };
    const v = selected(['v_proj', 'kv_b_proj', 'down_proj']);
    expect(v.every((m) => m.endsWith('kv_b_proj') || m.endsWith('down_proj'))).toBe(true);
    expect(v.filter((m) => m.endsWith('kv_b_proj'))).toEqual(['model.layers.0.self_attn.kv_b_proj', 'model.layers.1.self_attn.kv_b_proj', 'model.layers.2.self_attn.kv_b_proj']);
    expect(selected('model\\.layers\\.1\\..*\\.(up|gate)_proj')).toEqual(linearModules(base).filter((m) => /^model\.layers\.1\..*\.(up|gate)_proj$/.test(m)));
    expect(selected('all-linear')).toEqual(linearModules(base).filter((m) => m !== 'lm_head'));
  });

  it('malformed or unsupported adapters are FormatErrors naming the key or the tensor', () => {
    const a = adapter('float32', 2);
    const { safetensors, config: text } = a.toPeft();
    const cfg = JSON.parse(text) as Record<string, unknown>;
    const load = (c: Record<string, unknown>, st = safetensors): LoraAdapter => LoraAdapter.fromPeft(a.base, st, JSON.stringify(c));
    expect(() => load({ ...cfg, use_dora: true })).toThrow(FormatError);
    expect(() => load({ ...cfg, use_dora: true })).toThrow(/key 'use_dora'/);
    expect(() => load({ ...cfg, use_rslora: true })).toThrow(/key 'use_rslora'/);
    expect(() => load({ ...cfg, bias: 'all' })).toThrow(/key 'bias'/);
    expect(() => load({ ...cfg, rank_pattern: { q_b_proj: 8 } })).toThrow(/key 'rank_pattern'/);
    expect(() => load({ ...cfg, r: 4 })).toThrow(/has shape \[3, \d+\], expected \[4, \d+\] \(r = 4\)/);
    expect(() => load({ ...cfg, target_modules: ['nothing_here'] })).toThrow(/selects none/);
    expect(() => load({ ...cfg, target_modules: [...(cfg.target_modules as string[]), 'o_proj'] })).toThrow(/missing: target_modules selects 'model\.layers\.0\.self_attn\.o_proj'/);
    expect(() => load({ ...cfg, target_modules: (cfg.target_modules as string[]).slice(1) })).toThrow(/is not a lora_A\/lora_B tensor/);
    expect(() => LoraAdapter.fromPeft(a.base, safetensors, '{not json')).toThrow(/adapter_config\.json: is not JSON/);
  });
});

describe('training a LoRA adapter with the Trainer', () => {
  it('AdamW holds state for A and B only; the base (router biases included) stays bit-identical; the loss goes down', () => {
    const corpus = bytesToTokens(new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(40)));
    const c = microConfig({ vocabSize: 256 });
    const base = randomWeights(c, 'float32', 3);
    const before = new Map([...base].map(([n, t]) => [n, bits(t.data)]));
    const a = LoraAdapter.create(base, { targets: ['*.self_attn.q_b_proj', '*.self_attn.o_proj', 'lm_head'], r: 4, alpha: 8 });
    const model = new TransformedModel(c, a);
    const trainer = new Trainer(model, {
      data: new TokenStream(corpus, { batchSize: 2, seqLen: 16, order: 'random', seed: 1 }),
      lr: { kind: 'cosine', peak: 1e-2, warmupSteps: 1, holdSteps: 0, decaySteps: 20, min: 1e-3 },
      biasGamma: 0.001,
    });
    expect([...trainer.optimizer.names].sort()).toEqual([...a.params.keys()].sort());
    const reports = trainer.train(12);
    for (const [n, t] of base) expect(bits(t.data), n).toEqual(before.get(n));
    expect(maxAbs(a.params.get(loraParamNames('lm_head').B)!.data)).toBeGreaterThan(0);
    expect(reports.at(-1)!.loss.main).toBeLessThan(reports[0]!.loss.main);
    expect(reports[0]!.loads).toEqual([]);
  }, 60_000);
});

/** BF16 bytes → numbers (the high half of a float32), written out here. */
function decodeBf16(t: SafetensorsTensor): number[] {
  const out: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < t.bytes.length; i += 2) {
    u[0] = (t.bytes[i]! | (t.bytes[i + 1]! << 8)) << 16;
    out.push(f[0]!);
  }
  return out;
}
