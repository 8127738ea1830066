/**
 * The MoE router ("gate", SPEC §3.8), exactly as the official `Gate.forward`:
 *
 *   ℓ = x W_gᵀ;  s = σ(ℓ) (or softmax over E);  ŝ = s + b (selection only);
 *   group limit: keep `topk_group` groups by group score, the other experts get ŝ = −∞;
 *   I = top-K of ŝ;  w = s[I] (/ Σ_K s[I] if norm_topk_prob) · routed_scaling_factor.
 *
 * Tie-breaks (torch leaves them unspecified; random inputs never tie): among equal group
 * scores the lower group index is kept, among equal ŝ the lower expert index is selected
 * first. Selection compares values rounded to the model dtype, as the official code does.
 */
import { ConfigError, InputError, ShapeError, WeightsError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';
import { hasRouterBias, type ModelConfig } from './config.js';
import type { TraceFn } from './trace.js';

/** Router parameters, HF names (`mlp.gate.weight`, `mlp.gate.e_score_correction_bias`). Also holds gradients. */
export interface GateWeights {
  /** W_g [E, d]. */
  weight: Tensor;
  /** b [E]: present iff `topk_method` is `noaux_tc`; used only to choose experts, never trained by backprop. */
  e_score_correction_bias?: Tensor;
}

/** The routing decisions of one MoE layer for N tokens. */
export interface Routing {
  /** [N, K] chosen experts, by descending biased score ŝ; ties → lower expert index. */
  indices: Int32Array;
  /** [N, K] gate weight of `indices[t,k]`: unbiased s, renormalised over the K (norm_topk_prob), × routed_scaling_factor. */
  weights: FloatArray;
  /** [N, E] unbiased affinities s (sigmoid or softmax of the logits), without the bias. */
  scores: FloatArray;
  /** [E] number of (token, slot) assignments per expert: load[e] = #{(t,k): I[t,k] = e}. */
  load: Int32Array;
}

/** What {@link gateBackward} needs from the forward. */
export interface GateSaved {
  N: number;
  d: number;
  E: number;
  K: number;
  /** x: [N, d] (referenced, not copied). */
  x: FloatArray;
  /** s: [N, E] (the same array as `routing.scores`). */
  scores: FloatArray;
  /** I: [N, K]. */
  indices: Int32Array;
  /** Σ_k s[t, I[t,k]] per token [N] when norm_topk_prob, else null. */
  sums: FloatArray | null;
}

/** Options of {@link gateForward}. */
export interface GateForwardOptions {
  /** Receives `${prefix}.gate:logits`, `:scores`, `:indices`, `:weights`. */
  trace?: TraceFn;
  /** The MoE module path, e.g. `model.layers.3.mlp`. */
  prefix?: string;
}

/** Checks the router keys of the config against each other (SPEC §1.4 rules the gate relies on). */
function checkRouterConfig(config: ModelConfig): void {
  const { nRoutedExperts: E, nGroup: G, topkGroup, numExpertsPerTok: K } = config;
  if (!Number.isInteger(E) || E < 1) throw new ConfigError('n_routed_experts', `must be a positive integer, got ${E}`);
  if (!Number.isInteger(G) || G < 1 || E % G !== 0) {
    throw new ConfigError('n_group', `must divide n_routed_experts = ${E}, got ${G}`);
  }
  if (!Number.isInteger(topkGroup) || topkGroup < 1 || topkGroup > G) {
    throw new ConfigError('topk_group', `must be in [1, n_group = ${G}], got ${topkGroup}`);
  }
  if (!Number.isInteger(K) || K < 1 || K > topkGroup * (E / G)) {
    throw new ConfigError(
      'num_experts_per_tok',
      `must be in [1, topk_group·n_routed_experts/n_group = ${topkGroup * (E / G)}], got ${K}`,
    );
  }
  if (hasRouterBias(config) && G > 1 && E / G < 2) {
    throw new ConfigError('n_group', `the top-2 group score needs at least 2 experts per group, got ${E / G}`);
  }
}

/** Checks W_g and the bias against the config and x. Returns d. */
function checkGateWeights(config: ModelConfig, w: GateWeights, x: FloatArray, N: number): number {
  const E = config.nRoutedExperts;
  const [rows, d] = w.weight.shape as [number, number];
  if (w.weight.shape.length !== 2 || rows !== E) {
    throw new ShapeError(`gate weight has shape [${w.weight.shape.join(', ')}], expected [n_routed_experts = ${E}, d]`);
  }
  if (x.length !== N * d) throw new ShapeError(`gate input has ${x.length} elements, expected N·d = ${N}·${d}`);
  const bias = w.e_score_correction_bias;
  if (hasRouterBias(config) && bias === undefined) {
    throw new WeightsError(`topk_method 'noaux_tc' needs e_score_correction_bias, but the gate has none`);
  }
  if (!hasRouterBias(config) && bias !== undefined) {
    throw new WeightsError(`the gate has e_score_correction_bias but topk_method is '${config.topkMethod}' (bias iff 'noaux_tc')`);
  }
  if (bias !== undefined && bias.size !== E) {
    throw new ShapeError(`e_score_correction_bias has shape [${bias.shape.join(', ')}], expected [${E}]`);
  }
  return d;
}

/**
 * Routes N tokens: returns the routing (indices, weights, unbiased scores, load) and what the
 * backward needs. All arithmetic is in x's precision (f32 or f64).
 */
export function gateForward(
  config: ModelConfig,
  w: GateWeights,
  x: FloatArray /* [N, d] */,
  N: number,
  opts: GateForwardOptions = {},
): { routing: Routing; saved: GateSaved } {
  checkRouterConfig(config);
  const d = checkGateWeights(config, w, x, N);
  const { nRoutedExperts: E, nGroup: G, topkGroup, numExpertsPerTok: K, routedScalingFactor: R } = config;
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const round = dtype === 'float32' ? Math.fround : (v: number) => v;
  const name = (role: string) => `${opts.prefix ?? 'mlp'}.gate:${role}`;

  // ℓ = x W_gᵀ: [N, E]
  const logits = allocate(dtype, N * E);
  k.matmul('nt', x, w.weight.data, logits, N, E, d);
  opts.trace?.(name('logits'), [N, E], logits);

  // s = σ(ℓ) (V3) or softmax over the E experts (V2-style)
  const scores = allocate(dtype, N * E);
  if (config.scoringFunc === 'softmax') k.softmaxForward(logits, scores, N, E);
  else for (let i = 0; i < N * E; i++) scores[i] = 1 / (1 + Math.exp(-logits[i]!));
  opts.trace?.(name('scores'), [N, E], scores);

  const bias = w.e_score_correction_bias?.data;
  const sel = allocate(dtype, E); // ŝ of one token, rounded to the dtype like the official tensor
  const groupScore = new Float64Array(G);
  const groupKept = new Uint8Array(G);
  const indices = new Int32Array(N * K);
  const weights = allocate(dtype, N * K);
  const sums = config.normTopkProb ? allocate(dtype, N) : null;
  const load = new Int32Array(E);

  for (let t = 0; t < N; t++) {
    const so = t * E;
    // ŝ = s + b: the bias only chooses experts (SPEC §7 claim 1)
    for (let e = 0; e < E; e++) sel[e] = bias !== undefined ? scores[so + e]! + bias[e]! : scores[so + e]!;

    if (G > 1) limitToGroups(sel, G, topkGroup, bias !== undefined, round, groupScore, groupKept);

    // top-K of ŝ, descending, ties → lower expert index; weights from the UNBIASED s
    const io = t * K;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const e = argmaxUnused(sel, null, E);
      if (e < 0) throw new InputError(`router: token ${t} has NaN scores, cannot select expert ${k + 1} of ${K}`);
      sel[e] = NaN; // taken (NaN never compares greater)
      indices[io + k] = e;
      load[e]!++;
      weights[io + k] = scores[so + e]!;
      sum = round(sum + weights[io + k]!);
    }
    if (sums !== null) {
      // renormalise over the K selected only; no epsilon (official code; HF adds 1e-20)
      sums[t] = sum;
      for (let k = 0; k < K; k++) weights[io + k] = weights[io + k]! / sum;
    }
    // routed_scaling_factor multiplies the routed weights always (also for softmax scoring)
    for (let k = 0; k < K; k++) weights[io + k] = weights[io + k]! * R;
  }
  opts.trace?.(name('indices'), [N, K], indices);
  opts.trace?.(name('weights'), [N, K], weights);

  return {
    routing: { indices, weights, scores, load },
    saved: { N, d, E, K, x, scores, indices, sums },
  };
}

/**
 * Group-limited selection (SPEC §3.8) on one token's selection scores ŝ [E], in place: a group's score is the sum of
 * its two largest ŝ (`top2`: the router has a bias; official code, HF always top-2) or its largest; the `topkGroup`
 * best groups are kept (ties → the lower group index) and every expert of the other groups gets −∞, not 0 (HF's 0
 * lets a masked expert beat allowed ones with ŝ < 0). `round` rounds the top-2 sum to the scores' precision;
 * `score` [G] and `kept` [G] are scratch.
 */
export function limitToGroups(
  sel: FloatArray,
  G: number,
  topkGroup: number,
  top2: boolean,
  round: (v: number) => number,
  score: Float64Array = new Float64Array(G),
  kept: Uint8Array = new Uint8Array(G),
): void {
  const size = sel.length / G;
  for (let g = 0; g < G; g++) {
    let m1 = -Infinity;
    let m2 = -Infinity;
    for (let e = g * size; e < (g + 1) * size; e++) {
      const v = sel[e]!;
      if (v > m1) {
        m2 = m1;
        m1 = v;
      } else if (v > m2) m2 = v;
    }
    score[g] = top2 ? round(m1 + m2) : m1;
  }
  kept.fill(0);
  for (let j = 0; j < topkGroup; j++) kept[argmaxUnused(score, kept, G)] = 1;
  for (let g = 0; g < G; g++) if (kept[g] === 0) sel.fill(-Infinity, g * size, (g + 1) * size);
}

/**
 * Index of the largest value among entries not marked used (`used[i] = 1`); the first (lowest
 * index) wins ties. NaN entries are skipped. −∞ entries are eligible (so a row that is all −∞
 * still returns its first eligible index).
 */
function argmaxUnused(v: ArrayLike<number>, used: Uint8Array | null, n: number): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < n; i++) {
    if (used !== null && used[i] === 1) continue;
    const x = v[i]!;
    if (Number.isNaN(x)) continue;
    if (best < 0 || x > bestV) {
      best = i;
      bestV = x;
    }
  }
  return best;
}

/**
 * Backward of {@link gateForward} through ℓ → s → w (the gather, the renormalisation
 * ∂w_i/∂s_j = R(δ_ij/Σ − s_i/Σ²), the scaling, and sigmoid/softmax), holding the selection I
 * fixed. No gradient reaches the bias or the indices. `dscores` [N, E] (optional) is a gradient
 * w.r.t. the unbiased scores s from elsewhere, e.g. the balance loss. Accumulates dW_g into
 * `grads.weight` and returns dx [N, d].
 */
export function gateBackward(
  config: ModelConfig,
  w: GateWeights,
  grads: GateWeights,
  saved: GateSaved,
  dweights: FloatArray /* [N, K] */,
  dscores?: FloatArray /* [N, E] */,
): FloatArray {
  const { N, d, E, K, x, scores, indices, sums } = saved;
  if (dweights.length !== N * K) throw new ShapeError(`gate dweights has ${dweights.length} elements, expected N·K = ${N}·${K}`);
  if (dscores !== undefined && dscores.length !== N * E) {
    throw new ShapeError(`gate dscores has ${dscores.length} elements, expected N·E = ${N}·${E}`);
  }
  const R = config.routedScalingFactor;
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);

  // ds: [N, E] = dscores + the contribution of the gathered weights
  const ds = allocate(dtype, N * E);
  if (dscores !== undefined) ds.set(dscores);
  for (let t = 0; t < N; t++) {
    const io = t * K;
    const so = t * E;
    if (sums !== null) {
      // w_i = R·s_i/Σ:  ds_j = R·(dw_j/Σ − Σ_i dw_i·s_i/Σ²)
      const sum = sums[t]!;
      let dot = 0;
      for (let k = 0; k < K; k++) dot += dweights[io + k]! * scores[so + indices[io + k]!]!;
      for (let k = 0; k < K; k++) {
        const e = indices[io + k]!;
        ds[so + e] = ds[so + e]! + R * (dweights[io + k]! / sum - dot / (sum * sum));
      }
    } else {
      // w_i = R·s_i
      for (let k = 0; k < K; k++) {
        const e = indices[io + k]!;
        ds[so + e] = ds[so + e]! + R * dweights[io + k]!;
      }
    }
  }

  // dℓ: s = σ(ℓ) ⇒ ds·s(1−s);  s = softmax(ℓ) ⇒ s ⊙ (ds − ⟨ds, s⟩)
  const dl = allocate(dtype, N * E);
  if (config.scoringFunc === 'softmax') k.softmaxBackward(scores, ds, dl, N, E);
  else for (let i = 0; i < N * E; i++) dl[i] = ds[i]! * scores[i]! * (1 - scores[i]!);

  // ℓ = x W_gᵀ:  dW_g += dℓᵀ x,  dx = dℓ W_g
  k.matmul('tn', dl, x, grads.weight.data, E, d, N, true);
  const dx = allocate(dtype, N * d);
  k.matmul('nn', dl, w.weight.data, dx, N, d, E);
  return dx;
}
