import { describe, expect, it } from 'vitest';
import { kernelsFor } from '../../src/kernels/index.js';
import { mlaForward, mlaWeightsFrom, type AttnImpl } from '../../src/model/attention.js';
import { rmsnormForward } from '../../src/model/rmsnorm.js';
import { buildRopeTables, softmaxScale } from '../../src/model/rope.js';
import { Tensor, type DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { loadGolden, type GoldenCase } from './helpers.js';

const CASES = ['v3', 'v2lite', 'yarn', 'bf16', 'fp8'] as const;

describe('golden: softmax scale', () => {
  for (const c of CASES) {
    it(`${c}: softmaxScale(config) == meta.softmax_scale`, () => {
      const g = loadGolden(c);
      // both sides are f64 evaluations of the same closed form: a few ulps
      expect(Math.abs(softmaxScale(g.config) - g.meta.softmax_scale)).toBeLessThanOrEqual(4e-16 * g.meta.softmax_scale);
    });
  }
});

describe('golden: RoPE tables', () => {
  for (const c of ['v3', 'yarn'] as const) {
    it(`${c}: cos/sin == official freqs_cis rows`, () => {
      const g = loadGolden(c);
      const cos = g.expected('rope.cos');
      const sin = g.expected('rope.sin');
      const [T, half] = cos.shape as [number, number];
      const tables = buildRopeTables(g.config, T, 'float64');
      expect(tables.halfDim).toBe(half);
      // the official angles are f32 products p·ω (ω rounded to f32): |Δθ| ≤ p·ω·2⁻²³ ≤ T·2⁻²³ plus f32 cos/sin rounding
      const tol = T * 2 ** -23 + 2 ** -24;
      expectClose(tables.cos, cos.data, `${c} rope.cos`, { atol: tol });
      expectClose(tables.sin, sin.data, `${c} rope.sin`, { atol: tol });
    });
  }
});

/** The layer-0 attention weights of a golden case as a Map (the names the checkpoint has). */
function layer0Attention(g: GoldenCase, dtype: DType): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const n of ['q_proj', 'q_a_proj', 'q_a_layernorm', 'q_b_proj', 'kv_a_proj_with_mqa', 'kv_a_layernorm', 'kv_b_proj', 'o_proj']) {
    const name = `model.layers.0.self_attn.${n}.weight`;
    if (g.has(name)) m.set(name, g.weight(name, dtype));
  }
  return m;
}

/** MLA(input_layernorm(embed)) of layer 0, and the inputs it used. */
function layer0(g: GoldenCase, dtype: DType, attn: AttnImpl) {
  const emb = g.expected('hidden.embed');
  const [B, S, d] = emb.shape as [number, number, number];
  const x = Tensor.from(emb.shape, emb.data, dtype).data;
  const { y: a } = rmsnormForward(x, g.weight('model.layers.0.input_layernorm.weight', dtype).data, B * S, d, g.config.rmsNormEps);
  const w = mlaWeightsFrom(layer0Attention(g, dtype), 'model.layers.0.self_attn');
  const { out } = mlaForward(g.config, w, a, B, S, { startPos: 0, rope: buildRopeTables(g.config, S, dtype), attn });
  return { B, S, d, x, out };
}

describe('golden: layer-0 attention output', () => {
  for (const c of ['v3', 'v2lite', 'yarn'] as const) {
    for (const dtype of ['float32', 'float64'] as DType[]) {
      for (const attn of ['naive', 'absorb'] as const) {
        it(`${c} ${dtype} ${attn}: == hidden.attn_out[0] (f32 golden)`, () => {
          const g = loadGolden(c);
          const { B, S, d, out } = layer0(g, dtype, attn);
          const ref = g.expected('hidden.attn_out').data.subarray(0, B * S * d);
          // README tolerance for float32 goldens: 2e-5·max|ref| (noise between correct f32 computations ≤ 1e-6);
          // for our f64 output the f32 reference's own rounding dominates, the same bound applies.
          expectClose(out, ref, `${c} attn_out[0]`, { atolOfMax: 2e-5 });
        });
      }
    }
    for (const attn of ['naive', 'absorb'] as const) {
      it(`${c} float64 ${attn}: embed + MLA + dense MLP == hidden.layers_f64[0]`, () => {
        const g = loadGolden(c);
        const { B, S, d, x, out } = layer0(g, 'float64', attn);
        const N = B * S;
        const k = kernelsFor('float64');
        // block 0 is dense (first_k_dense_replace ≥ 1): h = x + MLA; h += down(silu(gate(f))·up(f)), f = post_attention_layernorm(h)
        const h = new Float64Array(N * d);
        k.add(x, out, h, N * d);
        const wt = (n: string) => g.weight(`model.layers.0.${n}.weight`, 'float64').data;
        const { y: f } = rmsnormForward(h, wt('post_attention_layernorm'), N, d, g.config.rmsNormEps);
        const I = g.config.intermediateSize;
        const a1 = new Float64Array(N * I);
        const a3 = new Float64Array(N * I);
        const z = new Float64Array(N * I);
        k.matmul('nt', f, wt('mlp.gate_proj'), a1, N, I, d);
        k.matmul('nt', f, wt('mlp.up_proj'), a3, N, I, d);
        k.swigluForward(a1, a3, z, N * I);
        k.matmul('nt', z, wt('mlp.down_proj'), h, N, d, I, true);
        const ref = g.expected('hidden.layers_f64').data.subarray(0, N * d);
        // float64 implementation vs F64 goldens: 1e-13 of max (achieved ~1e-15)
        expectClose(h, ref, `${c} layers_f64[0]`, { atolOfMax: 1e-13 });
      });
    }
  }
});
