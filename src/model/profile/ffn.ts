/**
 * The feed-forward halves under a numerics profile: the official `MLP`, `Gate` and `MoE` (inference/model.py).
 *
 *   MLP(x)  = w2(bf16(bf16(silu(w1 x)) · w3 x))
 *   Gate:   ℓ = F.linear(x, W_g) (bf16); s = sigmoid(ℓ) (bf16) or softmax(ℓ, f32);
 *           ŝ = s + b in f32 (the bias is f32); group scores and top-k on ŝ; w = s[I] (bf16 for sigmoid:
 *           w /= bf16(Σ w), w *= route_scale, each rounded; f32 for softmax), returned `.type_as(x)` (bf16)
 *   MoE:    y = 0 (bf16); for each expert i in index order, for its tokens in token order:
 *           y[t] = bf16(y[t] + bf16(expert_i(x[t]) · w[t, slot]));  out = bf16(y + shared(x))
 */
import type { ModelConfig } from '../config.js';
import { limitToGroups, type Routing } from '../gate.js';
import type { TraceFn } from '../trace.js';
import { bf16, siluBF16, sigmoidBF16, softmaxF32 } from './arith.js';
import type { ProfileWeights } from './linear.js';

const fr = Math.fround;

/** The SwiGLU MLP at `prefix` (dense layer, expert or shared experts) on bf16 rows x [N, d]. */
export function mlpProfile(pw: ProfileWeights, prefix: string, x: Float32Array, N: number): Float32Array {
  const a = pw.linear(x, `${prefix}.gate_proj.weight`, N); // w1
  const b = pw.linear(x, `${prefix}.up_proj.weight`, N); // w3
  for (let i = 0; i < a.length; i++) a[i] = bf16(fr(siluBF16(a[i]!) * b[i]!));
  return pw.linear(a, `${prefix}.down_proj.weight`, N); // w2
}

/** The router at `prefix` (the MoE module path) on bf16 rows x [N, d]. */
export function gateProfile(config: ModelConfig, pw: ProfileWeights, biasF32: Float32Array | null, prefix: string, x: Float32Array, N: number, trace?: TraceFn): Routing {
  const { nRoutedExperts: E, nGroup: G, topkGroup, numExpertsPerTok: K } = config;
  const name = (role: string): string => `${prefix}.gate:${role}`;
  const logits = pw.linear(x, `${prefix}.gate.weight`, N); // the gate weight is never FP8: F.linear
  trace?.(name('logits'), [N, E], logits);
  let scores: Float32Array;
  const sigmoid = config.scoringFunc !== 'softmax';
  if (sigmoid) {
    scores = new Float32Array(N * E);
    for (let i = 0; i < N * E; i++) scores[i] = sigmoidBF16(logits[i]!);
  } else {
    scores = softmaxF32(logits, N, E);
  }
  trace?.(name('scores'), [N, E], scores);

  const sel = new Float32Array(E);
  const indices = new Int32Array(N * K);
  const weights = new Float32Array(N * K);
  const load = new Int32Array(E);
  // in the scores' precision: bf16 for the sigmoid router, f32 for softmax
  const round = sigmoid ? bf16 : fr;
  const R = fr(config.routedScalingFactor);
  for (let t = 0; t < N; t++) {
    const so = t * E;
    for (let e = 0; e < E; e++) sel[e] = biasF32 !== null ? fr(scores[so + e]! + biasF32[e]!) : scores[so + e]!;
    // f32 group scores (top-2 sum rounded to f32: the biased scores are f32), group mask −∞
    if (G > 1) limitToGroups(sel, G, topkGroup, biasF32 !== null, fr);
    const taken = new Uint8Array(E);
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const e = argmax(sel, taken);
      taken[e] = 1;
      indices[t * K + k] = e;
      load[e]!++;
      weights[t * K + k] = scores[so + e]!;
      sum += scores[so + e]!;
    }
    if (config.normTopkProb) {
      const s = round(fr(sum)); // weights.sum(dim=-1): f32 accumulation, rounded to the weights' dtype
      for (let k = 0; k < K; k++) weights[t * K + k] = round(fr(weights[t * K + k]! / s));
    }
    for (let k = 0; k < K; k++) weights[t * K + k] = bf16(round(fr(weights[t * K + k]! * R))); // *= route_scale; .type_as(x)
  }
  trace?.(name('indices'), [N, K], indices);
  trace?.(name('weights'), [N, K], weights);
  return { indices, weights, scores, load };
}

/** Index of the largest entry not yet marked; ties → the lower index; −∞ entries are eligible. */
function argmax(v: Float32Array, used: Uint8Array): number {
  let best = -1;
  for (let i = 0; i < v.length; i++) {
    if (used[i] === 1) continue;
    if (best < 0 || v[i]! > v[best]!) best = i;
  }
  return best;
}

/** The MoE at `prefix` on bf16 rows x [N, d]: the router, then {@link moeCombine}. */
export function moeProfile(
  config: ModelConfig,
  pw: ProfileWeights,
  biasF32: Float32Array | null,
  prefix: string,
  x: Float32Array,
  N: number,
  trace?: TraceFn,
): { out: Float32Array; routing: Routing } {
  const routing = gateProfile(config, pw, biasF32, prefix, x, N, trace);
  return { out: moeCombine(config, pw, routing, prefix, x, N, trace), routing };
}

/** The experts of the MoE at `prefix` given the routing (indices and bf16 weights), plus the shared experts. */
export function moeCombine(
  config: ModelConfig,
  pw: ProfileWeights,
  routing: Pick<Routing, 'indices' | 'weights'>,
  prefix: string,
  x: Float32Array,
  N: number,
  trace?: TraceFn,
): Float32Array {
  const d = config.hiddenSize;
  const K = config.numExpertsPerTok;
  const y = new Float32Array(N * d);
  for (let e = 0; e < config.nRoutedExperts; e++) {
    // torch.where(indices == e): (token, slot) pairs in token order
    const rows: number[] = [];
    const slots: number[] = [];
    for (let t = 0; t < N; t++) {
      for (let k = 0; k < K; k++) {
        if (routing.indices[t * K + k] === e) {
          rows.push(t);
          slots.push(k);
        }
      }
    }
    if (rows.length === 0) continue;
    const xe = new Float32Array(rows.length * d);
    rows.forEach((t, i) => xe.set(x.subarray(t * d, (t + 1) * d), i * d));
    const ye = mlpProfile(pw, `${prefix}.experts.${e}`, xe, rows.length);
    rows.forEach((t, i) => {
      const wt = routing.weights[t * K + slots[i]!]!;
      for (let j = 0; j < d; j++) y[t * d + j] = bf16(fr(y[t * d + j]! + bf16(fr(ye[i * d + j]! * wt))));
    });
  }
  if (config.nSharedExperts === 0) return y;
  const z = mlpProfile(pw, `${prefix}.shared_experts`, x, N);
  trace?.(`${prefix}.shared_experts:out`, [N, d], z);
  const out = new Float32Array(N * d);
  for (let i = 0; i < out.length; i++) out[i] = bf16(fr(y[i]! + z[i]!));
  return out;
}
