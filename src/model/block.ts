/**
 * One pre-norm Transformer block (SPEC §3.10):
 *   h ← h + MLA(input_layernorm(h));  h ← h + FFN(post_attention_layernorm(h))
 * with FFN = the dense SwiGLU MLP for layer i < first_k_dense_replace and the MoE otherwise (MTP blocks, at
 * index num_hidden_layers + k, follow the same rule).
 *
 * Trace names (prefix `model.layers.{i}`): `{prefix}.input_layernorm:out`, `{prefix}.post_attention_layernorm:out`,
 * `{prefix}.mlp:out` [B, S, d] (MoE layers trace it inside moeForward, same shape), `{prefix}:out` (residual stream after
 * the block); attention traces under `{prefix}.self_attn`.
 */
import { kernelsFor } from '../kernels/index.js';
import type { LinearGemm } from '../ops/linear.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';
import { mlaBackward, mlaForward, mlaWeightsFrom, type MLAOptions, type MLASaved, type MLAWeights } from './attention.js';
import { isDenseLayer, type ModelConfig } from './config.js';
import type { Routing } from './gate.js';
import { mlpBackward, mlpForward, mlpWeightsFrom, type MLPSaved, type MLPWeights } from './mlp.js';
import { moeBackward, moeForward, moeWeightsFrom, type MoESaved, type MoEWeights } from './moe.js';
import type { ModelWeights } from './weights.js';
import { requireTensor } from '../ops/tensors.js';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js';

/** The tensors of one block (the same record type holds its gradients). */
export interface BlockWeights {
  /** `model.layers.{i}.input_layernorm.weight` [d]. */
  input_layernorm: Tensor;
  /** `model.layers.{i}.post_attention_layernorm.weight` [d]. */
  post_attention_layernorm: Tensor;
  self_attn: MLAWeights;
  /** Dense SwiGLU MLP (layer i < first_k_dense_replace), else null. */
  mlp: MLPWeights | null;
  /** MoE (layer i ≥ first_k_dense_replace), else null. */
  moe: MoEWeights | null;
}

/** The HF name prefix of layer `index`, e.g. `model.layers.3`. */
export function layerPrefix(index: number): string {
  return `model.layers.${index}`;
}

/** Views the block tensors of layer `index` (main layers 0..L−1, MTP layers L..L+D−1) out of a weights (or gradients) map. */
export function blockWeightsFrom(config: ModelConfig, weights: ModelWeights, index: number): BlockWeights {
  const p = layerPrefix(index);
  const get = (name: string): Tensor => requireTensor(weights, name);
  const moe = !isDenseLayer(config, index);
  return {
    input_layernorm: get(`${p}.input_layernorm.weight`),
    post_attention_layernorm: get(`${p}.post_attention_layernorm.weight`),
    self_attn: mlaWeightsFrom(weights, `${p}.self_attn`),
    mlp: moe ? null : mlpWeightsFrom(weights, `${p}.mlp`),
    moe: moe ? moeWeightsFrom(config, weights, `${p}.mlp`) : null,
  };
}

/** The phases a {@link PhaseTimer} is told about (forward and backward of each part of the model). */
export type ModelPhase =
  | 'grads.zero'
  | 'embedding.forward'
  | 'attention.forward'
  | 'mlp.forward'
  | 'moe.forward'
  | 'head.forward'
  | 'loss'
  | 'mtp.forward'
  | 'balance'
  | 'mtp.backward'
  | 'head.backward'
  | 'moe.backward'
  | 'mlp.backward'
  | 'attention.backward'
  | 'embedding.backward';

/**
 * Receives the wall time in ms of one phase (once per layer for the block phases: sum by name). Optional in
 * every forward/backward that takes it; without it no clock is read.
 */
export type PhaseTimer = (phase: ModelPhase, ms: number) => void;

const noLap = (): void => {};

/**
 * A lap timer over `profile`: each call reports the time since the previous call (or creation) under `phase`;
 * a call without a phase only restarts the clock. Without `profile` it is a no-op.
 */
export function phaseLaps(profile: PhaseTimer | undefined): (phase?: ModelPhase) => void {
  if (profile === undefined) return noLap;
  let t = performance.now();
  return (phase) => {
    const now = performance.now();
    if (phase !== undefined) profile(phase, now - t);
    t = now;
  };
}

/** Options of {@link blockForward}: the attention options plus the layer index and a phase timer. */
export interface BlockForwardOptions extends Pick<MLAOptions, 'startPos' | 'rope' | 'attn' | 'cache' | 'trace'> {
  /** Absolute layer index (names the traces). */
  index: number;
  /** Keep what the whole block's backward needs. */
  save?: boolean;
  /** Receives the time of the attention half and of the FFN half. */
  profile?: PhaseTimer;
  /** GEMMs of the block's Linears (attention projections, MLP/expert projections); default exact. */
  gemm?: LinearGemm;
}

/** What {@link blockBackward} needs: the block input, the mid residual, the two rstd vectors and the sub-layers' saves. */
export interface BlockSaved {
  B: number;
  S: number;
  x: FloatArray;
  hMid: FloatArray;
  rstdAttn: FloatArray;
  rstdFfn: FloatArray;
  attn: MLASaved;
  mlp: MLPSaved | null;
  moe: MoESaved | null;
}

/** Output of {@link blockForward}. */
export interface BlockOutput {
  /** Residual stream after the block [B,S,d] (a fresh array). */
  out: FloatArray;
  /** Routing decisions of an MoE block, null for a dense one. */
  routing: Routing | null;
  saved: BlockSaved | null;
}

/** Forward of one block on x [B,S,d] (x is not modified). */
export function blockForward(config: ModelConfig, w: BlockWeights, x: FloatArray, B: number, S: number, opts: BlockForwardOptions): BlockOutput {
  const dtype = dtypeOf(x);
  const k = kernelsFor(dtype);
  const d = config.hiddenSize;
  const N = B * S;
  const prefix = layerPrefix(opts.index);
  const trace = opts.trace;
  const save = opts.save ?? false;
  const lap = phaseLaps(opts.profile);

  // a = RMSNorm_attn(x): [N, d]
  const { y: a, rstd: rstdAttn } = rmsnormForward(x, w.input_layernorm.data, N, d, config.rmsNormEps);
  trace?.(`${prefix}.input_layernorm:out`, [B, S, d], a);
  const mla = mlaForward(config, w.self_attn, a, B, S, {
    startPos: opts.startPos,
    rope: opts.rope,
    attn: opts.attn,
    ...(opts.cache !== undefined ? { cache: opts.cache } : {}),
    save,
    ...(trace !== undefined ? { trace } : {}),
    prefix: `${prefix}.self_attn`,
    ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}),
  });
  // hMid = x + MLA(a)
  const hMid = allocate(dtype, N * d);
  k.add(x, mla.out, hMid, N * d);
  lap('attention.forward');

  // f = RMSNorm_ffn(hMid)
  const { y: f, rstd: rstdFfn } = rmsnormForward(hMid, w.post_attention_layernorm.data, N, d, config.rmsNormEps);
  trace?.(`${prefix}.post_attention_layernorm:out`, [B, S, d], f);

  let ffnOut: FloatArray;
  let routing: Routing | null = null;
  let mlpSaved: MLPSaved | null = null;
  let moeSaved: MoESaved | null = null;
  if (w.moe !== null) {
    const r = moeForward(config, w.moe, f, N, {
      save,
      ...(trace !== undefined ? { trace } : {}),
      prefix: `${prefix}.mlp`,
      outShape: [B, S, d],
      ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}),
    });
    ffnOut = r.out;
    routing = r.routing;
    moeSaved = r.saved;
  } else {
    const r = mlpForward(w.mlp!, f, N, save, opts.gemm !== undefined ? { gemm: opts.gemm, prefix: `${prefix}.mlp` } : undefined);
    ffnOut = r.out;
    mlpSaved = r.saved;
    trace?.(`${prefix}.mlp:out`, [B, S, d], ffnOut);
  }
  // out = hMid + FFN(f)
  const out = allocate(dtype, N * d);
  k.add(hMid, ffnOut, out, N * d);
  trace?.(`${prefix}:out`, [B, S, d], out);
  lap(w.moe !== null ? 'moe.forward' : 'mlp.forward');

  const saved: BlockSaved | null = save
    ? { B, S, x, hMid, rstdAttn, rstdFfn, attn: mla.saved!, mlp: mlpSaved, moe: moeSaved }
    : null;
  return { out, routing, saved };
}

/**
 * Backward of one block: accumulates into the gradient record `g` and returns dx [B,S,d] (fresh).
 * `dscores` [N,E] is an extra gradient w.r.t. the router's unbiased scores (the balance loss, SPEC §5.3).
 * `profile` receives the time of the FFN half and of the attention half.
 */
export function blockBackward(
  config: ModelConfig,
  w: BlockWeights,
  g: BlockWeights,
  saved: BlockSaved,
  dout: FloatArray,
  dscores?: FloatArray,
  profile?: PhaseTimer,
): FloatArray {
  const lap = phaseLaps(profile);
  const d = config.hiddenSize;
  const N = saved.B * saved.S;

  // out = hMid + FFN(RMSNorm_ffn(hMid)): dhMid = dout + RMSNorm_ffnᵀ(FFNᵀ(dout))
  const df =
    w.moe !== null
      ? moeBackward(config, w.moe, g.moe!, saved.moe!, dout, dscores)
      : mlpBackward(w.mlp!, g.mlp!, saved.mlp!, dout);
  const dhMid = dout.slice();
  rmsnormBackward(saved.hMid, w.post_attention_layernorm.data, saved.rstdFfn, df, dhMid, g.post_attention_layernorm.data, N, d);
  lap(w.moe !== null ? 'moe.backward' : 'mlp.backward');

  // hMid = x + MLA(RMSNorm_attn(x)): dx = dhMid + RMSNorm_attnᵀ(MLAᵀ(dhMid))
  const da = mlaBackward(config, w.self_attn, g.self_attn, saved.attn, dhMid);
  const dx = dhMid.slice();
  rmsnormBackward(saved.x, w.input_layernorm.data, saved.rstdAttn, da, dx, g.input_layernorm.data, N, d);
  lap('attention.backward');
  return dx;
}
