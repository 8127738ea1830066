/** The weights of one MLA module: the record, its lookup by HF name, its shape checks and the dimensions. */
import { ShapeError, WeightsError } from '../../errors.js';
import { requireTensor } from '../../ops/tensors.js';
import { Tensor, type DType } from '../../tensor.js';
import type { ModelConfig } from '../config.js';

/** The weights of one MLA module (HF names, without `.weight`); the same record holds gradients. */
export interface MLAWeights {
  /** [H·(n+R), d], only when q_lora_rank = 0. */
  q_proj?: Tensor;
  /** [qr, d]. */
  q_a_proj?: Tensor;
  /** [qr]. */
  q_a_layernorm?: Tensor;
  /** [H·(n+R), qr]. */
  q_b_proj?: Tensor;
  /** [C+R, d], rows 0..C−1 the latent and C..C+R−1 the shared RoPE key. */
  kv_a_proj_with_mqa: Tensor;
  /** [C]. */
  kv_a_layernorm: Tensor;
  /** [H·(n+V), C], the rows of head h being [k_nope (n) | v (V)]. */
  kv_b_proj: Tensor;
  /** [d, H·V]. */
  o_proj: Tensor;
}

/** Dimensions used throughout; T is the key length of the call. */
export interface Dims {
  d: number;
  H: number;
  n: number;
  R: number;
  V: number;
  C: number;
  qr: number;
  qk: number;
}

export function dimsOf(config: ModelConfig): Dims {
  const n = config.qkNopeHeadDim;
  const R = config.qkRopeHeadDim;
  return { d: config.hiddenSize, H: config.numAttentionHeads, n, R, V: config.vHeadDim, C: config.kvLoraRank, qr: config.qLoraRank, qk: n + R };
}

function checkTensor(what: string, name: string, t: Tensor | undefined, shape: readonly number[], dtype: DType): Tensor {
  if (t === undefined) throw new WeightsError(`MLA ${what}: missing '${name}' (expected shape [${shape.join(', ')}])`);
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
    throw new ShapeError(`MLA ${what}: '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  if (t.dtype !== dtype) throw new ShapeError(`MLA ${what}: '${name}' is ${t.dtype}, the activations are ${dtype}`);
  return t;
}

/** Checks every tensor of an MLA weight (or gradient) record against the config. */
export function checkMLAWeights(config: ModelConfig, w: MLAWeights, dtype: DType, what: string): void {
  const { d, H, R, V, C, qr, qk, n } = dimsOf(config);
  if (qr > 0) {
    checkTensor(what, 'q_a_proj', w.q_a_proj, [qr, d], dtype);
    checkTensor(what, 'q_a_layernorm', w.q_a_layernorm, [qr], dtype);
    checkTensor(what, 'q_b_proj', w.q_b_proj, [H * qk, qr], dtype);
  } else {
    checkTensor(what, 'q_proj', w.q_proj, [H * qk, d], dtype);
  }
  checkTensor(what, 'kv_a_proj_with_mqa', w.kv_a_proj_with_mqa, [C + R, d], dtype);
  checkTensor(what, 'kv_a_layernorm', w.kv_a_layernorm, [C], dtype);
  checkTensor(what, 'kv_b_proj', w.kv_b_proj, [H * (n + V), C], dtype);
  checkTensor(what, 'o_proj', w.o_proj, [d, H * V], dtype);
}

/**
 * Collects the MLA weights of one layer from a checkpoint map; `prefix` is like
 * `model.layers.3.self_attn`. The query path is q LoRA iff `${prefix}.q_a_proj.weight` exists.
 */
export function mlaWeightsFrom(weights: ReadonlyMap<string, Tensor>, prefix: string): MLAWeights {
  const get = (name: string): Tensor => requireTensor(weights, `${prefix}.${name}.weight`);
  const w: MLAWeights = {
    kv_a_proj_with_mqa: get('kv_a_proj_with_mqa'),
    kv_a_layernorm: get('kv_a_layernorm'),
    kv_b_proj: get('kv_b_proj'),
    o_proj: get('o_proj'),
  };
  if (weights.has(`${prefix}.q_a_proj.weight`)) {
    w.q_a_proj = get('q_a_proj');
    w.q_a_layernorm = get('q_a_layernorm');
    w.q_b_proj = get('q_b_proj');
  } else {
    w.q_proj = get('q_proj');
  }
  return w;
}

/** A zero-filled record with the shapes and precision of `w` (gradient buffers for {@link mlaBackward}). */
export function zerosLikeMLAWeights(w: MLAWeights): MLAWeights {
  const z = (t: Tensor): Tensor => Tensor.zeros(t.shape, t.dtype);
  const g: MLAWeights = { kv_a_proj_with_mqa: z(w.kv_a_proj_with_mqa), kv_a_layernorm: z(w.kv_a_layernorm), kv_b_proj: z(w.kv_b_proj), o_proj: z(w.o_proj) };
  if (w.q_proj) g.q_proj = z(w.q_proj);
  if (w.q_a_proj) g.q_a_proj = z(w.q_a_proj);
  if (w.q_a_layernorm) g.q_a_layernorm = z(w.q_a_layernorm);
  if (w.q_b_proj) g.q_b_proj = z(w.q_b_proj);
  return g;
}
