import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GOLDEN_CASES, GOLDEN_DIR, loadGoldenCase } from '../helpers/golden.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import type { SafetensorsTensor } from '../../src/io/safetensors.js';
import { fromFloatArray } from '../../src/io/safetensors.js';
import { E4M3_TABLE } from '../../src/io/numeric.js';
import type { ModelConfig } from '../../src/model/config.js';
import { configFromHF, countParameters } from '../../src/model/config.js';
import { tiny, small, bench, deepseekV3 } from '../../src/model/presets.js';
import { initWeights, loadModelFromBytes, loadWeights, mtpDuplicateNames, parameterSpecs, saveWeights, WeightsMismatchError } from '../../src/model/weights.js';
import { loadModel, saveModel } from '../../src/model/weights_node.js';
import { WeightsError } from '../../src/errors.js';

/** Bitwise-equal arrays (fast; vitest's toEqual on large typed arrays is slow). */
function expectSame(got: ArrayLike<number>, ref: ArrayLike<number>, name: string): void {
  expect(got.length, name).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) if (!Object.is(got[i], ref[i])) throw new Error(`${name}[${i}]: got ${got[i]}, expected ${ref[i]}`);
}

const raw = (c: string): Map<string, SafetensorsTensor> => readSafetensorsFile(`${GOLDEN_DIR}${c}/model.safetensors`).tensors;

describe('golden cases load', () => {
  for (const c of GOLDEN_CASES) {
    it(`${c}: every tensor of model.safetensors is a parameter of config.json (and vice versa), f32 and f64`, () => {
      const g = loadGoldenCase(c, 'float64');
      const specs = parameterSpecs(g.config);
      expect([...g.weights.keys()]).toEqual(specs.map((s) => s.name));
      for (const s of specs) expect(g.weights.get(s.name)!.shape).toEqual(s.shape);
      const names = [...raw(c).keys()].filter((n) => !n.endsWith('_scale_inv')).sort();
      expect(names).toEqual(specs.map((s) => s.name).sort());
      const f32 = loadGoldenCase(c, 'float32');
      expect(f32.weights.get('lm_head.weight')!.dtype).toBe('float32');
      expect(g.weights.get('lm_head.weight')!.dtype).toBe('float64');
    });
  }

  it('fp8: dequantised weights equal e4m3(byte) · scale_inv[r/128, c/128] computed by hand from the raw bytes', () => {
    const file = raw('fp8');
    const g = loadGoldenCase('fp8', 'float64');
    const name = 'model.layers.0.mlp.gate_proj.weight'; // [272, 192] → scale [3, 2], partial edge blocks
    const q = file.get(name)!;
    const s = file.get(`${name}_scale_inv`)!;
    expect(q.dtype).toBe('F8_E4M3');
    expect(s.shape).toEqual([3, 2]);
    const sv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
    const w = g.weights.get(name)!.data;
    for (const [r, col] of [[0, 0], [127, 127], [128, 128], [200, 191], [271, 0], [271, 191], [130, 5]] as const) {
      const code = q.bytes[r * 192 + col]!;
      // decode by the SPEC §6.3 formula, independently of the library's table
      const sign = code & 0x80 ? -1 : 1;
      const e = (code >> 3) & 15;
      const m = code & 7;
      const val = e === 0 ? sign * 2 ** -6 * (m / 8) : sign * 2 ** (e - 7) * (1 + m / 8);
      const scale = sv.getFloat32((Math.floor(r / 128) * 2 + Math.floor(col / 128)) * 4, true);
      expect(w[r * 192 + col]).toBe(val * scale);
    }
    // README: scales rounded to 16 significant bits so f32 and f64 dequantisation agree bit for bit
    expect(Array.from(loadGoldenCase('fp8', 'float32').weights.get(name)!.data)).toEqual(Array.from(w));
  });

  it('bf16: weights are the BF16 bits shifted left by 16; the router bias stays F32', () => {
    const file = raw('bf16');
    const g = loadGoldenCase('bf16', 'float32');
    const t = file.get('model.layers.1.self_attn.kv_b_proj.weight')!;
    expect(t.dtype).toBe('BF16');
    const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
    const w = g.weights.get('model.layers.1.self_attn.kv_b_proj.weight')!.data;
    const u32 = new Uint32Array(1);
    const f32 = new Float32Array(u32.buffer);
    for (const i of [0, 1, 17, w.length - 1]) {
      u32[0] = dv.getUint16(2 * i, true) << 16;
      expect(w[i]).toBe(f32[0]);
    }
    expect(file.get('model.layers.2.mlp.gate.e_score_correction_bias')!.dtype).toBe('F32');
    // bf16 case = v3 weights rounded to BF16
    const v3 = loadGoldenCase('v3', 'float32').weights.get('model.layers.1.self_attn.kv_b_proj.weight')!.data;
    const x = v3[17]!;
    expect(Math.abs(w[17]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
  });
});

describe('parameterSpecs', () => {
  const configs: [string, ModelConfig][] = [
    ['tiny (MTP 1)', tiny],
    ['small', small],
    ['bench', bench],
    ['q_lora 0, softmax, 2 MTP, 2 shared', { ...tiny, qLoraRank: 0, scoringFunc: 'softmax', normTopkProb: false, topkMethod: 'greedy', numNextnPredictLayers: 2, nSharedExperts: 2 }],
    ['no shared experts, all dense', { ...tiny, nSharedExperts: 0, firstKDenseReplace: 3 }],
    ['MTP layer dense', { ...tiny, firstKDenseReplace: 3, numHiddenLayers: 3, numNextnPredictLayers: 1 }],
  ];
  for (const [label, c] of configs) {
    it(`${label}: numel sum equals countParameters (two independent derivations)`, () => {
      const specs = parameterSpecs(c);
      const n = countParameters(c);
      const sum = (f: (name: string) => boolean): number => specs.filter((s) => f(s.name)).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
      const mtpPrefixes = Array.from({ length: c.numNextnPredictLayers }, (_, k) => `model.layers.${c.numHiddenLayers + k}.`);
      const isMtp = (name: string): boolean => mtpPrefixes.some((p) => name.startsWith(p));
      expect(sum((nm) => !isMtp(nm))).toBe(n.total);
      expect(sum(isMtp)).toBe(n.mtp);
      expect(new Set(specs.map((s) => s.name)).size).toBe(specs.length);
    });
  }

  it('full V3: parameters + MTP copies + one scale per FP8 linear = the 91,991 checkpoint tensors (SPEC §2.3)', () => {
    const specs = parameterSpecs(deepseekV3);
    const isFp8 = (n: string): boolean => /_proj(_with_mqa)?\.weight$/.test(n) && !n.endsWith('eh_proj.weight'); // every Linear except router, eh_proj, head
    const fp8 = specs.filter((x) => isFp8(x.name)).length;
    expect(specs.length + mtpDuplicateNames(deepseekV3).length + fp8).toBe(91_991);
    expect(specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0)).toBe(671_026_419_200 + 11_610_068_224);
    const mtpNames = specs.map((x) => x.name).filter((n) => n.startsWith('model.layers.61.'));
    expect(mtpNames.length + 2 + mtpNames.filter(isFp8).length).toBe(1558 + 6); // MTP layer incl. its scales and 2 copies
  });

  it('order: embedding, layers, final norm, lm_head, then MTP (enorm, hnorm, eh_proj, block, shared_head.norm); bias not trainable', () => {
    const specs = parameterSpecs(tiny);
    const names = specs.map((s) => s.name);
    expect(names[0]).toBe('model.embed_tokens.weight');
    const head = names.indexOf('lm_head.weight');
    expect(names[head - 1]).toBe('model.norm.weight');
    expect(names[head + 1]).toBe('model.layers.3.enorm.weight');
    expect(names[head + 2]).toBe('model.layers.3.hnorm.weight');
    expect(names[head + 3]).toBe('model.layers.3.eh_proj.weight');
    expect(specs[head + 3]!.shape).toEqual([64, 128]);
    expect(names.at(-1)).toBe('model.layers.3.shared_head.norm.weight');
    expect(names).not.toContain('model.layers.3.embed_tokens.weight');
    for (const s of specs) expect(s.trainable).toBe(!s.name.endsWith('e_score_correction_bias'));
    expect(names.filter((n) => n.endsWith('e_score_correction_bias'))).toEqual(['model.layers.1.mlp.gate.e_score_correction_bias', 'model.layers.2.mlp.gate.e_score_correction_bias', 'model.layers.3.mlp.gate.e_score_correction_bias']);
    // the MTP prefix follows num_hidden_layers, never a hard-coded 61
    expect(mtpDuplicateNames({ ...tiny, numHiddenLayers: 2, firstKDenseReplace: 1 })).toEqual([
      ['model.layers.2.embed_tokens.weight', 'model.embed_tokens.weight'],
      ['model.layers.2.shared_head.head.weight', 'lm_head.weight'],
    ]);
  });
});

describe('initWeights (SPEC §5.9)', () => {
  it('same seed → same weights; f32 = f64 rounded; norms 1, bias 0, matrices N(0, 0.006²)', () => {
    const a = initWeights(tiny, { seed: 7, dtype: 'float64' });
    const b = initWeights(tiny, { seed: 7, dtype: 'float64' });
    const f = initWeights(tiny, { seed: 7, dtype: 'float32' });
    const other = initWeights(tiny, { seed: 8, dtype: 'float64' });
    for (const s of parameterSpecs(tiny)) {
      const x = a.get(s.name)!.data;
      expectSame(b.get(s.name)!.data, x, s.name);
      expectSame(f.get(s.name)!.data, Float64Array.from(x, Math.fround), s.name);
      if (s.init === 'ones') expect(x.every((v) => v === 1)).toBe(true);
      if (s.init === 'zeros') expect(x.every((v) => v === 0)).toBe(true);
    }
    expect(other.get('lm_head.weight')!.data[0]).not.toBe(a.get('lm_head.weight')!.data[0]);
    // sample std of the 16384-element embedding: standard error of the std ≈ 0.006/√(2·16384) ≈ 3.3e-5; allow 5σ
    const e = Array.from(a.get('model.embed_tokens.weight')!.data);
    const mean = e.reduce((s, v) => s + v, 0) / e.length;
    const sd = Math.sqrt(e.reduce((s, v) => s + (v - mean) ** 2, 0) / e.length);
    expect(Math.abs(sd - 0.006)).toBeLessThan(1.7e-4);
    expect(Math.abs(mean)).toBeLessThan((5 * 0.006) / Math.sqrt(e.length));
    expect(initWeights(tiny, { seed: 7, dtype: 'float64', std: 0.02 }).get('lm_head.weight')!.data[3]).toBeCloseTo(x3(a) * (0.02 / 0.006), 15);
  });
});
const x3 = (w: Map<string, { data: ArrayLike<number> }>): number => w.get('lm_head.weight')!.data[3]!;

describe('save / load round trips', () => {
  const w64 = initWeights(tiny, { seed: 3, dtype: 'float64' });

  it('F64 and F32 are exact; BF16 equals per-element RNE; the bias is F32 in BF16 files', () => {
    for (const dtype of ['F64', 'F32', 'BF16', 'F16'] as const) {
      const tensors = saveWeights(tiny, w64, { dtype });
      expect(tensors.get('model.layers.1.mlp.gate.e_score_correction_bias')!.dtype).toBe(dtype === 'F64' ? 'F64' : 'F32');
      const { weights, warnings } = loadWeights(tensors, tiny, { dtype: 'float64' });
      expect(warnings).toEqual([]);
      const name = 'model.layers.2.self_attn.q_b_proj.weight';
      const got = weights.get(name)!.data;
      const ref = w64.get(name)!.data;
      if (dtype === 'F64') expectSame(got, ref, name);
      if (dtype === 'F32') expectSame(got, Float64Array.from(ref, Math.fround), name);
      if (dtype === 'BF16') for (let i = 0; i < 50; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 2 ** -8); // half ulp ≤ 2^-8 relative (8 significant bits)
      if (dtype === 'F16') for (let i = 0; i < 50; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(Math.max(Math.abs(ref[i]!) * 2 ** -11, 2 ** -25));
    }
  });

  it('FP8: saved as F8_E4M3 + scale_inv and loaded back as the block dequantisation', () => {
    const tensors = saveWeights(tiny, w64, { dtype: 'F32', fp8: true });
    const name = 'model.layers.0.mlp.down_proj.weight';
    const q = tensors.get(name)!;
    const s = tensors.get(`${name}_scale_inv`)!;
    expect(q.dtype).toBe('F8_E4M3');
    expect(s.shape).toEqual([1, 1]);
    expect(tensors.get('model.layers.1.mlp.gate.weight')!.dtype).toBe('F32'); // router stays unquantised
    expect(tensors.get('model.layers.3.eh_proj.weight')!.dtype).toBe('F32');
    const { weights } = loadWeights(tensors, tiny, { dtype: 'float64' });
    const scale = new DataView(s.bytes.buffer, s.bytes.byteOffset).getFloat32(0, true);
    const w = weights.get(name)!.data;
    for (let i = 0; i < w.length; i += 97) expect(w[i]).toBe(E4M3_TABLE[q.bytes[i]!]! * scale);
    // 3 mantissa bits: relative error ≤ 2^-4 for normals, absolute ≤ 2^-10·scale in the subnormal range
    const ref = w64.get(name)!.data;
    for (let i = 0; i < w.length; i++) expect(Math.abs(w[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 2 ** -4 + 2 ** -10 * scale);
  });

  it('MTP copies are written, accepted on load, and a differing copy gives a warning', () => {
    const tensors = saveWeights(tiny, w64, { dtype: 'F64' });
    expect(tensors.has('model.layers.3.embed_tokens.weight')).toBe(true);
    expect(tensors.has('model.layers.3.shared_head.head.weight')).toBe(true);
    expect(loadWeights(tensors, tiny, { dtype: 'float64' }).warnings).toEqual([]);
    const data = new Float64Array(w64.get('lm_head.weight')!.data);
    data[5]! += 1;
    tensors.set('model.layers.3.shared_head.head.weight', fromFloatArray(data, [256, 64], 'F64'));
    const { weights, warnings } = loadWeights(tensors, tiny, { dtype: 'float64' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('model.layers.3.shared_head.head.weight differs from lm_head.weight');
    expect(weights.get('lm_head.weight')!.data).toEqual(w64.get('lm_head.weight')!.data);
    expect(weights.has('model.layers.3.shared_head.head.weight')).toBe(false);
  });

  it('saveModel / loadModel, single file and sharded, f32 exact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsv3-weights-'));
    try {
      const w32 = initWeights(small, { seed: 11, dtype: 'float32' });
      saveModel(join(dir, 'one'), small, w32, { dtype: 'F32' });
      saveModel(join(dir, 'sharded'), small, w32, { dtype: 'F32', maxShardBytes: 1 << 20 });
      const files = readdirSync(join(dir, 'sharded'));
      expect(files).toContain('model.safetensors.index.json');
      expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
      for (const sub of ['one', 'sharded']) {
        const m = loadModel(join(dir, sub), { dtype: 'float32' });
        expect(m.config).toEqual(small);
        expect(m.warnings).toEqual([]);
        for (const [n, t] of w32) expectSame(m.weights.get(n)!.data, t.data, n);
      }
      // an index pointing a tensor at the wrong shard is reported by name
      const idxPath = join(dir, 'sharded', 'model.safetensors.index.json');
      const idx = JSON.parse(readFileSync(idxPath, 'utf8'));
      const shardsUsed = [...new Set(Object.values(idx.weight_map))] as string[];
      idx.weight_map['lm_head.weight'] = shardsUsed.find((s) => s !== idx.weight_map['lm_head.weight']);
      writeFileSync(idxPath, JSON.stringify(idx));
      expect(() => loadModel(join(dir, 'sharded'), { dtype: 'float32' })).toThrow(/lm_head\.weight/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loading entry points', () => {
  it('loadModel(explicit files) and loadModelFromBytes give the golden helper weights', () => {
    const ref = loadGoldenCase('fp8', 'float32');
    const a = loadModel({ config: `${GOLDEN_DIR}fp8/config.json`, weights: [`${GOLDEN_DIR}fp8/model.safetensors`] }, { dtype: 'float32' });
    const b = loadModelFromBytes(ref.hfConfig, [{ name: 'model.safetensors', bytes: new Uint8Array(readFileSync(`${GOLDEN_DIR}fp8/model.safetensors`)) }], { dtype: 'float32' });
    for (const m of [a, b]) {
      expect(m.config).toEqual(ref.config);
      for (const [n, t] of ref.weights) expectSame(m.weights.get(n)!.data, t.data, n);
    }
  });

  it('shards passed as parsed files are merged; a name in two files is an error naming it', () => {
    const all = raw('v2lite');
    const config = loadGoldenCase('v2lite').config;
    const names = [...all.keys()];
    const half = (lo: number, hi: number) => ({ tensors: new Map(names.slice(lo, hi).map((n) => [n, all.get(n)!])), metadata: {} });
    expect(loadWeights([half(0, 10), half(10, names.length)], config, { dtype: 'float64' }).weights.size).toBe(names.length);
    expect(() => loadWeights([half(0, 10), half(9, names.length)], config, { dtype: 'float64', source: 'shards' })).toThrow(`shards: weights do not match the config; 1 invalid: ${names[9]}: present in two files`);
  });
});

describe('loadWeights reports every mismatch by name', () => {
  const config = configFromHF(JSON.parse(readFileSync(`${GOLDEN_DIR}fp8/config.json`, 'utf8')));
  const catchErr = (tensors: Map<string, SafetensorsTensor>, c = config): WeightsMismatchError => {
    try {
      loadWeights(tensors, c, { dtype: 'float32', source: 'fp8/model.safetensors' });
    } catch (e) {
      expect(e).toBeInstanceOf(WeightsError);
      expect((e as Error).message).toContain('fp8/model.safetensors');
      return e as WeightsMismatchError;
    }
    throw new Error('expected a WeightsError');
  };

  it('missing, unexpected and mis-shaped tensors in one error', () => {
    const t = new Map(raw('fp8'));
    t.delete('model.norm.weight');
    t.set('model.layers.9.extra.weight', fromFloatArray([1, 2], [2], 'F32'));
    t.set('model.layers.0.input_layernorm.weight', fromFloatArray(new Float32Array(191), [191], 'F32'));
    const e = catchErr(t);
    expect(e.missing).toEqual(['model.norm.weight']);
    expect(e.unexpected).toEqual(['model.layers.9.extra.weight']);
    expect(e.invalid).toEqual(['model.layers.0.input_layernorm.weight: shape [191], expected [192]']);
    expect(e.message).toMatch(/1 missing: model\.norm\.weight; 1 unexpected: model\.layers\.9\.extra\.weight; 1 invalid: model\.layers\.0\.input_layernorm\.weight/);
  });

  it('FP8 scale of the wrong shape (SPEC §1.4 rule 10), missing scale, orphan scale, integer dtype', () => {
    const name = 'model.layers.0.self_attn.q_a_proj.weight'; // [160, 192] → [2, 2]
    let t = new Map(raw('fp8'));
    t.set(`${name}_scale_inv`, fromFloatArray([1, 1], [1, 2], 'F32'));
    expect(catchErr(t).invalid).toEqual([`${name}_scale_inv: shape [1, 2], expected [2, 2] = [ceil(160/128), ceil(192/128)]`]);
    t = new Map(raw('fp8'));
    t.delete(`${name}_scale_inv`);
    expect(catchErr(t).invalid).toEqual([`${name}: F8_E4M3 weight without ${name}_scale_inv`]);
    t = new Map(raw('fp8'));
    t.set('model.norm.weight_scale_inv', fromFloatArray([1], [1, 1], 'F32'));
    expect(catchErr(t).unexpected).toEqual(['model.norm.weight_scale_inv']);
    t = new Map(raw('fp8'));
    t.set('model.norm.weight', { dtype: 'I32', shape: [192], bytes: new Uint8Array(768) });
    expect(catchErr(t).invalid).toEqual(['model.norm.weight: dtype I32 is not a float format']);
  });

  it('a config that does not match the file lists all the differences (here: one MTP layer too many)', () => {
    const e = catchErr(raw('fp8'), { ...config, numNextnPredictLayers: 1 });
    expect(e.missing).toContain('model.layers.2.eh_proj.weight');
    expect(e.missing).toContain('model.layers.2.mlp.experts.7.down_proj.weight');
    expect(e.unexpected).toEqual([]);
    expect(e.message).toMatch(/more\)/); // long lists are truncated in the message, complete in .missing
  });
});
