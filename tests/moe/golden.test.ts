/**
 * Golden tests of the router and the MoE layer against the official DeepSeek-V3 code
 * (tests/fixtures/golden, see its README): for every MoE layer l of each case, the router on
 * `moe.{l}.gate_input` must reproduce `moe.{l}.scores`, `moe.{l}.topk_idx` (exact, in order)
 * and `moe.{l}.topk_weight`, and the MoE layer must reproduce `hidden.ffn_out[l]`.
 */
import { describe, expect, it } from 'vitest';
import { gateForward } from '../../src/model/gate.js';
import { moeForward, moeWeightsFrom } from '../../src/model/moe.js';
import type { DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { loadGoldenCaseLocal, toDtype } from './helpers.js';

const CASES = ['v3', 'v2lite', 'yarn'] as const;

describe.each(CASES)('golden %s: router and MoE', (name) => {
  for (const dtype of ['float32', 'float64'] as DType[]) {
    it(`${dtype}: scores, indices (exact, in order), weights and ffn_out of every MoE layer`, () => {
      const g = loadGoldenCaseLocal(name, dtype);
      const { config, meta, expected } = g;
      const N = meta.batch * meta.seq_len;
      const d = config.hiddenSize;
      const ffnOut = expected.get('hidden.ffn_out')!.data;
      expect(meta.moe_layers.length).toBeGreaterThan(0);
      for (const l of meta.moe_layers) {
        const prefix = `model.layers.${l}.mlp`;
        const w = moeWeightsFrom(config, g.weights, prefix);
        const x = toDtype(expected.get(`moe.${l}.gate_input`)!.data, dtype);
        const { routing } = gateForward(config, w.gate, x, N);

        // indices: routing margins ≥ 1e-4 ≫ f32 noise (~1e-7), so the selection is exact, in torch.topk order
        expect(Array.from(routing.indices)).toEqual(Array.from(expected.get(`moe.${l}.topk_idx`)!.data));
        // scores/weights: f32 goldens, README tolerance 2e-5·max (f32 noise ≤ 1e-6); in f64 mode the input is
        // the f32 gate_input, so f64 and the f32 golden differ by f32 rounding only, same tolerance
        expectClose(routing.scores, expected.get(`moe.${l}.scores`)!.data, `${name} moe.${l}.scores`, { atolOfMax: 2e-5 });
        expectClose(routing.weights, expected.get(`moe.${l}.topk_weight`)!.data, `${name} moe.${l}.topk_weight`, {
          atolOfMax: 2e-5,
        });
        // the f64 golden comes from the f64 forward, whose gate input differs from the stored f32 gate_input by
        // f32 rounding (~1e-7 relative): so only 2e-5·max here; the 1e-10 check needs the f64 model forward
        expectClose(routing.weights, expected.get(`moe.${l}.topk_weight_f64`)!.data, `${name} moe.${l}.topk_weight_f64`, {
          atolOfMax: 2e-5,
        });
        let load = 0;
        for (const c of routing.load) load += c;
        expect(load).toBe(N * config.numExpertsPerTok);

        // MoE output vs hidden.ffn_out[l] (f32 golden; reductions of length ≤ 112: 2e-5·max per README)
        const { out } = moeForward(config, w, x, N, { prefix });
        const ref = ffnOut.subarray(l * N * d, (l + 1) * N * d);
        expectClose(out, ref, `${name} hidden.ffn_out[${l}]`, { atolOfMax: 2e-5 });
      }
    });
  }
});
