/**
 * Whole-model golden tests against the official inference/model.py (tests/fixtures/golden, README there):
 * logits at every position (naive and absorbed MLA), hidden states after every block, the final norm,
 * routing indices (exact) and weights, cached decoding (prefill P, then one token at a time), and the loss
 * and the gradient of every weight — in f32 and f64.
 *
 * Tolerances (README "Suggested tolerances", per tensor, atol = tol·max|ref|):
 * - f32 forward tensors: 2e-5 (noise between correct f32 computations measured ≤ 1e-6; the margin allows other
 *   summation orders);
 * - f32 gradients vs the f64 goldens: 1e-4 (f32 vs f64 gradient noise measured ~1.5e-6); f32 loss: 1e-6 relative;
 * - f64 vs the f64 goldens: 1e-13 of max (an independent f64 implementation agrees to ~1e-15; the margin of 100×
 *   covers summation-order differences, while a 1,000× regression fails).
 */
import { describe, expect, it } from 'vitest';
import type { SafetensorsTensor } from '../../src/io/safetensors.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import type { DType } from '../../src/tensor.js';
import { expectClose } from '../helpers/close.js';
import { GOLDEN_CASES, expectedFloat64, expectedInt32, loadGoldenCase } from '../helpers/golden.js';

/** f64 vs the f64 goldens, relative to max |ref| (achieved ~1e-15). */
const F64_TOL = 1e-13;

const CASES = GOLDEN_CASES;
type CaseName = (typeof CASES)[number];

interface Golden {
  model: DeepSeekV3;
  expected: Map<string, SafetensorsTensor>;
  meta: { moe_layers: number[]; decode_prefill_len: number; batch: number; seq_len: number };
}

const cache = new Map<string, Golden>();
function golden(name: CaseName, dtype: DType): Golden {
  const key = `${name}/${dtype}`;
  let g = cache.get(key);
  if (g === undefined) {
    const c = loadGoldenCase(name, dtype);
    g = { model: new DeepSeekV3(c.config, c.weights), expected: c.expected, meta: c.meta as Golden['meta'] };
    cache.set(key, g);
  }
  return g;
}

const ref = (g: Golden, name: string): Float64Array => expectedFloat64(g.expected, name);
const refInt = (g: Golden, name: string): Int32Array => expectedInt32(g.expected, name);

/** Rows of input_ids [B, T] and the training rows [B, T+1] (input_ids with the last target appended). */
function batchOf(g: Golden): { ids: number[][]; train: number[][] } {
  const { batch: B, seq_len: T } = g.meta;
  const inp = refInt(g, 'input_ids');
  const tgt = refInt(g, 'targets');
  const ids: number[][] = [];
  const train: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row = Array.from(inp.subarray(b * T, (b + 1) * T));
    ids.push(row);
    train.push([...row, tgt[b * T + T - 1]!]);
  }
  return { ids, train };
}

/** Layer l's slab of an [L, ...] tensor. */
function slab(x: Float64Array, l: number, size: number): Float64Array {
  return x.subarray(l * size, (l + 1) * size);
}

for (const name of CASES) {
  describe(`golden ${name}`, () => {
    for (const attn of ['naive', 'absorb'] as const) {
      it(`f32 forward (${attn}): logits, hidden states, final norm, routing`, () => {
        const g = golden(name, 'float32');
        const { ids } = batchOf(g);
        const out = g.model.forward(ids, { attn });
        const tol = { atolOfMax: 2e-5 };
        expectClose(out.logits.data, ref(g, `logits.${attn}`), `logits.${attn}`, tol);
        const { batch: B, seq_len: T } = g.meta;
        const V = g.model.config.vocabSize;
        const last = new Float64Array(B * V);
        for (let b = 0; b < B; b++) last.set(out.logits.data.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
        expectClose(last, ref(g, `official_last_logits.${attn}`), `official_last_logits.${attn}`, tol);
        const layers = ref(g, 'hidden.layers');
        const size = out.finalHidden.size;
        out.hidden.forEach((h, l) => expectClose(h.data, slab(layers, l, size), `hidden.layers[${l}]`, tol));
        expectClose(out.finalHidden.data, ref(g, 'hidden.final_norm'), 'hidden.final_norm', tol);
        expect([...out.routing.keys()]).toEqual(g.meta.moe_layers);
        for (const l of g.meta.moe_layers) {
          const r = out.routing.get(l)!;
          expect(Array.from(r.indices), `moe.${l}.topk_idx`).toEqual(Array.from(refInt(g, `moe.${l}.topk_idx`)));
          expectClose(r.weights, ref(g, `moe.${l}.topk_weight`), `moe.${l}.topk_weight`, tol);
          expectClose(r.scores, ref(g, `moe.${l}.scores`), `moe.${l}.scores`, tol);
        }
      });

      it(`f32 cached decoding (${attn}): prefill P then one token at a time`, () => {
        const g = golden(name, 'float32');
        const { ids } = batchOf(g);
        const { batch: B, seq_len: T, decode_prefill_len: P } = g.meta;
        const V = g.model.config.vocabSize;
        const caches = g.model.createCaches(attn, B, T);
        const steps = T - P + 1;
        const got = new Float64Array(B * steps * V);
        const put = (j: number, logits: ArrayLike<number>): void => {
          for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) got[(b * steps + j) * V + v] = logits[b * V + v]!;
        };
        put(0, g.model.forward(ids.map((r) => r.slice(0, P)), { attn, caches, startPos: 0, logits: 'last' }).logits.data);
        for (let j = 1; j < steps; j++) {
          const p = P - 1 + j;
          put(j, g.model.forward(ids.map((r) => [r[p]!]), { attn, caches, startPos: p, logits: 'last' }).logits.data);
        }
        expectClose(got, ref(g, `decode.logits.${attn}`), `decode.logits.${attn}`, { atolOfMax: 2e-5 });
      });

      it(`f64 forward (${attn}) vs the f64 goldens`, () => {
        const g = golden(name, 'float64');
        const { ids } = batchOf(g);
        const out = g.model.forward(ids, { attn });
        const tol = { atolOfMax: F64_TOL };
        expectClose(out.logits.data, ref(g, 'logits.f64'), 'logits.f64', tol);
        const layers = ref(g, 'hidden.layers_f64');
        const size = out.finalHidden.size;
        out.hidden.forEach((h, l) => expectClose(h.data, slab(layers, l, size), `hidden.layers_f64[${l}]`, tol));
        expectClose(out.finalHidden.data, ref(g, 'hidden.final_norm_f64'), 'hidden.final_norm_f64', tol);
        for (const l of g.meta.moe_layers) {
          const r = out.routing.get(l)!;
          expect(Array.from(r.indices), `moe.${l}.topk_idx`).toEqual(Array.from(refInt(g, `moe.${l}.topk_idx`)));
          expectClose(r.weights, ref(g, `moe.${l}.topk_weight_f64`), `moe.${l}.topk_weight_f64`, tol);
        }
      });
    }

    for (const dtype of ['float64', 'float32'] as const) {
      it(`${dtype} loss and the gradient of every weight`, () => {
        const g = golden(name, dtype);
        const { train } = batchOf(g);
        // the golden loss is the plain mean CE: no MTP (the files have none) and no balance loss
        const r = g.model.lossAndGrads(train, { mtp: false, balanceAlpha: 0 });
        const lossRef = ref(g, 'loss')[0]!;
        const rel = dtype === 'float64' ? F64_TOL : 1e-6;
        expect(Math.abs(r.loss.main - lossRef) / Math.abs(lossRef), 'loss').toBeLessThanOrEqual(rel);
        expect(r.loss.total).toBe(r.loss.main);
        const tol = { atolOfMax: dtype === 'float64' ? F64_TOL : 1e-4 };
        let n = 0;
        for (const [wname, grad] of r.grads) {
          expectClose(grad.data, ref(g, `grad.${wname}`), `grad.${wname}`, tol);
          n++;
        }
        // every golden gradient has a counterpart
        const refNames = [...g.expected.keys()].filter((k) => k.startsWith('grad.'));
        expect(n).toBe(refNames.length);
      });
    }
  });
}
