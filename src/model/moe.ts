/**
 * The MoE layer (SPEC §3.9): `MoE(x_t) = Σ_{k<K} w[t,k]·Expert_{I[t,k]}(x_t) + Shared(x_t)`.
 * No capacity limit, no token dropping: every token reaches exactly K routed experts, and the
 * shared expert (not scaled by routed_scaling_factor) sees every token.
 *
 * Tokens are grouped per expert for the matmuls (gather the rows, run the expert's SwiGLU on
 * that batch), but the sum is formed per token in a pinned order: the K routed contributions in
 * top-k order, accumulated in double precision, then the shared output, rounded once. So the
 * result does not depend on how tokens are grouped or batched.
 */
import { ShapeError, WeightsError } from '../errors.js';
import type { LinearGemm } from '../ops/linear.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';
import { hasRouterBias, type ModelConfig } from './config.js';
import { gateBackward, gateForward, type GateSaved, type GateWeights, type Routing } from './gate.js';
import { mlpBackward, mlpForward, mlpWeightsFrom, type MLPSaved, type MLPWeights } from './mlp.js';
import type { TraceFn } from './trace.js';
import { requireTensor } from '../ops/tensors.js';

/** Parameters of one MoE layer (HF names under `model.layers.{i}.mlp`). The same record holds gradients. */
export interface MoEWeights {
  /** `mlp.gate.weight` and, iff topk_method is noaux_tc, `mlp.gate.e_score_correction_bias`. */
  gate: GateWeights;
  /** `mlp.experts.{e}`, e < n_routed_experts, each a SwiGLU of width moe_intermediate_size. */
  experts: MLPWeights[];
  /** `mlp.shared_experts`: the n_shared_experts fused into one SwiGLU of width n_shared·moe_intermediate_size; null if none. */
  shared_experts: MLPWeights | null;
}

/** What {@link moeBackward} needs from the forward. */
export interface MoESaved {
  N: number;
  d: number;
  K: number;
  gate: GateSaved;
  /** Gate weights w [N, K]. */
  weights: FloatArray;
  /** Per expert: the tokens it processed, in token order. */
  expertTokens: Int32Array[];
  /** Per (t, k) slot [N·K]: the row of token t in the batch of expert I[t,k]. */
  slotRow: Int32Array;
  /** Per expert: its forward state (null when no token chose it). */
  expertSaved: (MLPSaved | null)[];
  /** Per expert: Expert_e of its tokens [n_e, d] (null when no token chose it). */
  expertOut: (FloatArray | null)[];
  /** Shared expert's forward state, or null. */
  shared: MLPSaved | null;
}

/** Options of {@link moeForward}. */
export interface MoEForwardOptions {
  /** Keep what the backward needs. */
  save?: boolean;
  /** Receives `${prefix}:out`, `${prefix}.shared_experts:out` and the gate's `${prefix}.gate:*`. */
  trace?: TraceFn;
  /** Module path, e.g. `model.layers.3.mlp`. */
  prefix?: string;
  /** Shape of the traced `${prefix}:out` (default [N, d]; a block passes [B, S, d], the shape the MoE module returns). */
  outShape?: readonly number[];
  /** GEMMs of the experts' Linears (routed and shared; the gate stays exact). Default exact. */
  gemm?: LinearGemm;
}

/** The MoE weights under `prefix` (e.g. `model.layers.3.mlp`). */
export function moeWeightsFrom(config: ModelConfig, weights: ReadonlyMap<string, Tensor>, prefix: string): MoEWeights {
  const gateName = `${prefix}.gate.weight`;
  const gate: GateWeights = { weight: requireTensor(weights, gateName) };
  const biasName = `${prefix}.gate.e_score_correction_bias`;
  if (hasRouterBias(config)) gate.e_score_correction_bias = requireTensor(weights, biasName, "topk_method is 'noaux_tc'");
  const experts: MLPWeights[] = [];
  for (let e = 0; e < config.nRoutedExperts; e++) experts.push(mlpWeightsFrom(weights, `${prefix}.experts.${e}`));
  const shared_experts = config.nSharedExperts > 0 ? mlpWeightsFrom(weights, `${prefix}.shared_experts`) : null;
  return { gate, experts, shared_experts };
}

/**
 * Forward of the MoE layer on N tokens x [N, d]. Returns the output [N, d], the routing
 * (indices, weights, scores, load) and, with `save`, what the backward needs.
 */
export function moeForward(
  config: ModelConfig,
  w: MoEWeights,
  x: FloatArray /* [N, d] */,
  N: number,
  opts: MoEForwardOptions = {},
): { out: FloatArray /* [N, d] */; routing: Routing; saved: MoESaved | null } {
  const E = config.nRoutedExperts;
  const K = config.numExpertsPerTok;
  if (w.experts.length !== E) throw new ShapeError(`MoE has ${w.experts.length} experts, config n_routed_experts = ${E}`);
  if ((w.shared_experts !== null) !== config.nSharedExperts > 0) {
    throw new WeightsError(`MoE shared_experts ${w.shared_experts === null ? 'missing' : 'present'} but n_shared_experts = ${config.nSharedExperts}`);
  }
  const prefix = opts.prefix ?? 'mlp';
  const save = opts.save ?? false;
  const dtype = dtypeOf(x);
  const { routing, saved: gateSaved } = gateForward(config, w.gate, x, N, { trace: opts.trace, prefix });
  const d = gateSaved.d;
  const { indices, weights } = routing;

  // group the (t, k) slots per expert, in token order
  const expertTokens: Int32Array[] = [];
  const fill = new Int32Array(E);
  const slotRow = new Int32Array(N * K);
  for (let e = 0; e < E; e++) expertTokens.push(new Int32Array(routing.load[e]!));
  for (let t = 0; t < N; t++) {
    for (let k = 0; k < K; k++) {
      const e = indices[t * K + k]!;
      const r = fill[e]!++;
      expertTokens[e]![r] = t;
      slotRow[t * K + k] = r;
    }
  }

  // each expert's SwiGLU on the batch of its tokens: ye [n_e, d]
  const expertSaved: (MLPSaved | null)[] = [];
  const expertOut: (FloatArray | null)[] = [];
  for (let e = 0; e < E; e++) {
    const tokens = expertTokens[e]!;
    const n = tokens.length;
    if (n === 0) {
      expertSaved.push(null);
      expertOut.push(null);
      continue;
    }
    const xe = allocate(dtype, n * d);
    for (let r = 0; r < n; r++) xe.set(x.subarray(tokens[r]! * d, (tokens[r]! + 1) * d), r * d);
    // under FP8 training an expert's Wgrad tiles run along its own gathered tokens (docs/components/fp8-training.md)
    const { out: ye, saved } = mlpForward(w.experts[e]!, xe, n, save, opts.gemm && { gemm: opts.gemm, prefix: `${prefix}.experts.${e}` });
    expertSaved.push(saved);
    expertOut.push(ye);
  }

  let sharedOut: FloatArray | null = null;
  let sharedSaved: MLPSaved | null = null;
  if (w.shared_experts !== null) {
    const r = mlpForward(w.shared_experts, x, N, save, opts.gemm && { gemm: opts.gemm, prefix: `${prefix}.shared_experts` });
    sharedOut = r.out;
    sharedSaved = r.saved;
    opts.trace?.(`${prefix}.shared_experts:out`, [N, d], sharedOut);
  }

  // out_t = (Σ_k w[t,k]·Expert_{I[t,k]}(x_t), in top-k order) + Shared(x_t); shared NOT scaled
  const out = allocate(dtype, N * d);
  const acc = new Float64Array(d);
  for (let t = 0; t < N; t++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const slot = t * K + k;
      const wk = weights[slot]!;
      const ye = expertOut[indices[slot]!]!;
      const yo = slotRow[slot]! * d;
      for (let j = 0; j < d; j++) acc[j] = acc[j]! + wk * ye[yo + j]!;
    }
    const o = t * d;
    if (sharedOut !== null) for (let j = 0; j < d; j++) out[o + j] = acc[j]! + sharedOut[o + j]!;
    else for (let j = 0; j < d; j++) out[o + j] = acc[j]!;
  }
  opts.trace?.(`${prefix}:out`, opts.outShape ?? [N, d], out);

  const saved: MoESaved | null = save
    ? { N, d, K, gate: gateSaved, weights, expertTokens, slotRow, expertSaved, expertOut, shared: sharedSaved }
    : null;
  return { out, routing, saved };
}

/**
 * Backward of {@link moeForward}. Accumulates into `grads` (zeroed by the caller: every expert,
 * the shared expert and the gate weight; experts no token chose get nothing) and returns dx
 * [N, d]. `dscores` [N, E] is an extra gradient w.r.t. the unbiased router scores (e.g. from
 * the sequence-wise balance loss).
 */
export function moeBackward(
  config: ModelConfig,
  w: MoEWeights,
  grads: MoEWeights,
  saved: MoESaved,
  dout: FloatArray /* [N, d] */,
  dscores?: FloatArray /* [N, E] */,
): FloatArray {
  const { N, d, K, weights, expertTokens, slotRow, expertSaved, expertOut, gate } = saved;
  if (dout.length !== N * d) throw new ShapeError(`MoE dout has ${dout.length} elements, expected N·d = ${N}·${d}`);
  const dtype = dtypeOf(dout);
  const indices = gate.indices;

  // shared: out += Shared(x); its fresh dx is where the routed and gate parts accumulate (saves a zero + add pass)
  let dx: FloatArray;
  if (w.shared_experts !== null) {
    if (grads.shared_experts === null || saved.shared === null) throw new WeightsError('MoE backward: shared expert gradients or saved state missing');
    dx = mlpBackward(w.shared_experts, grads.shared_experts, saved.shared, dout);
  } else {
    dx = allocate(dtype, N * d);
  }

  // out_t += w[t,k]·ye:  dweights[t,k] = ⟨dout_t, ye⟩,  dye = w[t,k]·dout_t
  const dweights = allocate(dtype, N * K);
  const dyes = expertTokens.map((tokens) => (tokens.length > 0 ? allocate(dtype, tokens.length * d) : null));
  for (let slot = 0; slot < N * K; slot++) {
    const e = indices[slot]!;
    const yo = slotRow[slot]! * d;
    const ye = expertOut[e]!;
    const dye = dyes[e]!;
    const to = Math.floor(slot / K) * d;
    const wk = weights[slot]!;
    let dot = 0;
    for (let j = 0; j < d; j++) {
      dot += dout[to + j]! * ye[yo + j]!;
      dye[yo + j] = wk * dout[to + j]!;
    }
    dweights[slot] = dot;
  }
  for (let e = 0; e < expertTokens.length; e++) {
    const tokens = expertTokens[e]!;
    const es = expertSaved[e];
    if (tokens.length === 0) continue;
    if (es === null || es === undefined) throw new WeightsError(`MoE backward: expert ${e} has no saved state (run moeForward with save: true)`);
    const dxe = mlpBackward(w.experts[e]!, grads.experts[e]!, es, dyes[e]!);
    for (let r = 0; r < tokens.length; r++) {
      const o = tokens[r]! * d;
      for (let j = 0; j < d; j++) dx[o + j] = dx[o + j]! + dxe[r * d + j]!;
    }
  }

  const dxg = gateBackward(config, w.gate, grads.gate, gate, dweights, dscores);
  for (let i = 0; i < N * d; i++) dx[i] = dx[i]! + dxg[i]!;
  return dx;
}
