/**
 * Golden tests of the router and the MoE layer against the official DeepSeek-V3 code
 * (tests/fixtures/golden, see its README): for every MoE layer l of each case, the router on
 * `moe.{l}.gate_input` must reproduce `moe.{l}.scores`, `moe.{l}.topk_idx` (exact, in order)
 * and `moe.{l}.topk_weight`, and the MoE layer must reproduce `hidden.ffn_out[l]`.
 * The f64 goldens come from the f64 forward, whose router input is not stored: it is taken from
 * the library's f64 model forward (trace), itself golden-tested in tests/model.
 */
import { describe, expect, it } from 'vitest';
import { useBackend } from '../../src/kernels/index.js';
import { gateForward } from '../../src/model/gate.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { moeForward, moeWeightsFrom } from '../../src/model/moe.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { GOLDEN_CASES, expectedFloat64, expectedInt32, loadGoldenCase, type GoldenCase } from '../helpers/golden.js';

/** A golden case with its meta typed and its expected tensors decoded to f64 (floats) or int32 (I64). */
function golden(name: (typeof GOLDEN_CASES)[number], dtype: DType) {
  const c: GoldenCase = loadGoldenCase(name, dtype);
  const meta = c.meta as { moe_layers: number[]; batch: number; seq_len: number };
  const expected = { float: (n: string) => expectedFloat64(c.expected, n), int: (n: string) => expectedInt32(c.expected, n) };
  return { config: c.config, meta, weights: c.weights, expected };
}

describe.each(GOLDEN_CASES)('golden %s: router and MoE', (name) => {
  const variants: [DType, 'js' | 'wasm'][] = [
    ['float32', 'js'],
    ['float64', 'js'],
    ['float32', 'wasm'],
  ];
  for (const [dtype, backend] of variants) {
    it(`${dtype} (${backend} kernels) on the stored f32 gate_input: scores, indices (exact, in order), weights, ffn_out`, async () => {
      await useBackend(backend);
      try {
        checkStoredInput(dtype);
      } finally {
        await useBackend('js');
      }
    });
  }

  function checkStoredInput(dtype: DType): void {
    const g = golden(name, dtype);
    const { config, meta, expected } = g;
    const N = meta.batch * meta.seq_len;
    const d = config.hiddenSize;
    const ffnOut = expected.float('hidden.ffn_out');
    expect(meta.moe_layers.length).toBeGreaterThan(0);
    for (const l of meta.moe_layers) {
      const prefix = `model.layers.${l}.mlp`;
      const w = moeWeightsFrom(config, g.weights, prefix);
      const gateInput = expected.float(`moe.${l}.gate_input`);
      const x = Tensor.from([gateInput.length], gateInput, dtype).data;
      const { routing } = gateForward(config, w.gate, x, N);

      // routing margins ≥ 1e-4 ≫ f32 noise (~1e-7): the selection is exact, in torch.topk order
      expect(Array.from(routing.indices)).toEqual(Array.from(expected.int(`moe.${l}.topk_idx`)));
      // f32 goldens: README tolerance 2e-5·max (noise between correct f32 computations ≤ 1e-6);
      // in f64 mode the input is the same f32 gate_input, so only the f32 rounding differs
      expectClose(routing.scores, expected.float(`moe.${l}.scores`), `${name} moe.${l}.scores`, { atolOfMax: 2e-5 });
      expectClose(routing.weights, expected.float(`moe.${l}.topk_weight`), `${name} moe.${l}.topk_weight`, { atolOfMax: 2e-5 });
      let load = 0;
      for (const c of routing.load) load += c;
      expect(load).toBe(N * config.numExpertsPerTok);

      // MoE output vs hidden.ffn_out[l] (f32 golden; reductions of length ≤ 272: 2e-5·max per README)
      const { out } = moeForward(config, w, x, N, { prefix });
      expectClose(out, ffnOut.subarray(l * N * d, (l + 1) * N * d), `${name} hidden.ffn_out[${l}]`, { atolOfMax: 2e-5 });
    }
  }

  it('float64 on the f64 forward’s router input: topk_weight_f64 and the residual update at 1e-10', () => {
    const g = golden(name, 'float64');
    const { config, meta, expected } = g;
    const { batch: B, seq_len: T } = meta;
    const N = B * T;
    const d = config.hiddenSize;
    const inputIds = expected.int('input_ids');
    const ids = Array.from({ length: B }, (_, b) => Array.from(inputIds.subarray(b * T, (b + 1) * T)));
    const captured = new Map<string, Float64Array>();
    const model = new DeepSeekV3(config, g.weights);
    model.forward(ids, {
      attn: 'naive',
      trace: (n, _shape, data) => {
        if (/^model\.layers\.\d+\.(post_attention_layernorm|self_attn):out$/.test(n)) captured.set(n, Float64Array.from(data));
      },
    });
    const layers = expected.float('hidden.layers_f64');
    for (const l of meta.moe_layers) {
      const prefix = `model.layers.${l}.mlp`;
      const x = captured.get(`model.layers.${l}.post_attention_layernorm:out`)!;
      const attn = captured.get(`model.layers.${l}.self_attn:out`)!;
      const w = moeWeightsFrom(config, g.weights, prefix);
      const { out, routing } = moeForward(config, w, x, N, { prefix });
      expect(Array.from(routing.indices)).toEqual(Array.from(expected.int(`moe.${l}.topk_idx`)));
      // README: a correct f64 implementation agrees with the f64 goldens to ~1e-15; 1e-10·max
      expectClose(routing.weights, expected.float(`moe.${l}.topk_weight_f64`), `${name} moe.${l}.topk_weight_f64`, { atolOfMax: 1e-10 });
      // layers[l] = layers[l−1] + attn_out[l] + ffn_out[l]
      const prev = layers.subarray((l - 1) * N * d, l * N * d);
      const next = Float64Array.from(out, (v, i) => prev[i]! + attn[i]! + v);
      expectClose(next, layers.subarray(l * N * d, (l + 1) * N * d), `${name} hidden.layers_f64[${l}]`, { atolOfMax: 1e-10 });
    }
  });
});
