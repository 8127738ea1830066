/**
 * The main model over all positions (SPEC §3.10): embedding → L blocks → final RMSNorm → lm_head at EVERY
 * position, forward and backward.
 *
 * Trace names: `model.embed_tokens:out` [B,S,d], the block traces (see block.ts), `model.norm:out` [B,S,d]
 * (the input of the head), `lm_head:out` [B,S,V] (logits).
 */
import { InputError } from '../errors.js';
import { linearBackward, linearForward, type LinearGemm } from '../ops/linear.js';
import { allocate, type FloatArray, type Tensor } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import { blockBackward, blockForward, blockWeightsFrom, phaseLaps, type BlockSaved, type BlockWeights, type PhaseTimer } from './block.js';
import type { ModelConfig } from './config.js';
import { embeddingBackward, embeddingForward } from './embedding.js';
import type { Routing } from './gate.js';
import type { MLACache } from './kv_cache.js';
import type { RopeTables } from './rope.js';
import type { TraceFn } from './trace.js';
import type { ModelWeights } from './weights.js';
import { requireTensor } from '../ops/tensors.js';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js';

/** The main model's tensors (the same record type holds the gradients). */
export interface TransformerWeights {
  /** `model.embed_tokens.weight` [V, d]. */
  embed_tokens: Tensor;
  /** Blocks 0..L−1. */
  layers: BlockWeights[];
  /** `model.norm.weight` [d]. */
  norm: Tensor;
  /** `lm_head.weight` [V, d] (not tied to the embedding). */
  lm_head: Tensor;
}

/** Views the main-model tensors out of a weights (or gradients) map. */
export function transformerWeightsFrom(config: ModelConfig, weights: ModelWeights): TransformerWeights {
  const layers: BlockWeights[] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) layers.push(blockWeightsFrom(config, weights, i));
  return {
    embed_tokens: requireTensor(weights, 'model.embed_tokens.weight'),
    layers,
    norm: requireTensor(weights, 'model.norm.weight'),
    lm_head: requireTensor(weights, 'lm_head.weight'),
  };
}

/** Options of {@link transformerForward}. */
export interface TransformerForwardOptions {
  /** Tokens already in the caches (absolute position of the first id). Default 0. */
  startPos?: number;
  /** MLA implementation. Default 'naive'. */
  attn?: AttnImpl;
  /** One KV cache per main layer (decoding). */
  caches?: MLACache[];
  rope: RopeTables;
  /** Keep what the backward needs. */
  save?: boolean;
  trace?: TraceFn;
  /** Compute the head for every position ('all', default), only the last of each row ('last') or not at all ('none'). */
  logits?: 'all' | 'last' | 'none';
  /** Receives the time of the embedding, of each block half and of the head. */
  profile?: PhaseTimer;
  /** GEMMs of the blocks' Linears (default exact; the head stays exact, as FP8 training keeps it in high precision). */
  gemm?: LinearGemm;
}

/** What {@link transformerBackward} needs. */
export interface TransformerSaved {
  B: number;
  S: number;
  ids: Int32Array;
  blocks: BlockSaved[];
  /** Residual stream after the last block [B,S,d] (input of the final norm). */
  last: FloatArray;
  rstdFinal: FloatArray;
  finalHidden: FloatArray;
}

/** Output of {@link transformerForward}. */
export interface TransformerOutput {
  /** [B,S,V] for 'all'; [B,V] for 'last'; empty for 'none'. */
  logits: FloatArray;
  /** Residual stream after each block l, [B,S,d] each. */
  hidden: FloatArray[];
  /** After the final norm (the head's input) [B,S,d]. */
  finalHidden: FloatArray;
  /** Routing per layer (null for dense layers). */
  routing: (Routing | null)[];
  saved: TransformerSaved | null;
}

/** Forward of the main model on validated ids [B,S] at positions startPos..startPos+S−1. */
export function transformerForward(
  config: ModelConfig,
  w: TransformerWeights,
  ids: Int32Array,
  B: number,
  S: number,
  opts: TransformerForwardOptions,
): TransformerOutput {
  const dtype = w.embed_tokens.dtype;
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const N = B * S;
  const startPos = opts.startPos ?? 0;
  const attn = opts.attn ?? 'naive';
  const save = opts.save ?? false;
  const trace = opts.trace;
  if (opts.caches !== undefined && opts.caches.length !== config.numHiddenLayers) {
    throw new InputError(`forward: got ${opts.caches.length} KV caches for ${config.numHiddenLayers} layers`);
  }

  const lap = phaseLaps(opts.profile);
  // h⁰ = E_tok[ids]: [N, d]
  let h = embeddingForward(w.embed_tokens.data, ids, N, d);
  trace?.('model.embed_tokens:out', [B, S, d], h);
  lap('embedding.forward');
  const hidden: FloatArray[] = [];
  const routing: (Routing | null)[] = [];
  const blocks: BlockSaved[] = [];
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const r = blockForward(config, w.layers[l]!, h, B, S, {
      index: l,
      startPos,
      rope: opts.rope,
      attn,
      ...(opts.caches !== undefined ? { cache: opts.caches[l]! } : {}),
      save,
      ...(trace !== undefined ? { trace } : {}),
      ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
      ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}),
    });
    h = r.out;
    hidden.push(h);
    routing.push(r.routing);
    if (r.saved !== null) blocks.push(r.saved);
  }
  lap(); // the blocks reported their own time
  // final RMSNorm, then the head (not tied)
  const { y: finalHidden, rstd: rstdFinal } = rmsnormForward(h, w.norm.data, N, d, config.rmsNormEps);
  trace?.('model.norm:out', [B, S, d], finalHidden);

  let logits: FloatArray;
  const mode = opts.logits ?? 'all';
  if (mode === 'all') {
    logits = linearForward(finalHidden, w.lm_head.data, N, V, d);
    trace?.('lm_head:out', [B, S, V], logits);
  } else if (mode === 'last') {
    const lastRows = allocate(dtype, B * d);
    for (let b = 0; b < B; b++) lastRows.set(finalHidden.subarray((b * S + S - 1) * d, (b * S + S) * d), b * d);
    logits = linearForward(lastRows, w.lm_head.data, B, V, d);
  } else {
    logits = allocate(dtype, 0);
  }
  lap('head.forward');
  const saved: TransformerSaved | null = save ? { B, S, ids, blocks, last: h, rstdFinal, finalHidden } : null;
  return { logits, hidden, finalHidden, routing, saved };
}

/** Extra upstream gradients for {@link transformerBackward}. */
export interface TransformerBackwardOptions {
  /** Gradient w.r.t. the final (post-norm) hidden state [B,S,d], e.g. from MTP with `mtpHidden = 'post_norm'`. */
  dFinalHidden?: FloatArray;
  /** Gradient w.r.t. the last block's output (pre-norm) [B,S,d], e.g. from MTP with `mtpHidden = 'pre_norm'`. */
  dLast?: FloatArray;
  /** Per layer: gradient w.r.t. the router's unbiased scores [N,E] (balance loss), or null. */
  dscores?: (FloatArray | null)[];
  /** Receives the time of the head, of each block half and of the embedding. */
  profile?: PhaseTimer;
}

/**
 * Backward of {@link transformerForward} (saved with `logits: 'all'`): accumulates into the gradient record `g`
 * given dlogits [B,S,V] (or null when only hidden-state gradients flow back).
 */
export function transformerBackward(
  config: ModelConfig,
  w: TransformerWeights,
  g: TransformerWeights,
  saved: TransformerSaved,
  dlogits: FloatArray | null,
  opts: TransformerBackwardOptions = {},
): void {
  const dtype = w.embed_tokens.dtype;
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const N = saved.B * saved.S;
  const lap = phaseLaps(opts.profile);

  // logits = finalHidden·W_headᵀ
  const dFinal = opts.dFinalHidden !== undefined ? opts.dFinalHidden.slice() : allocate(dtype, N * d);
  if (dlogits !== null) linearBackward(saved.finalHidden, w.lm_head.data, dlogits, g.lm_head.data, N, V, d, dFinal);
  // finalHidden = RMSNorm_final(last)
  let dh = opts.dLast !== undefined ? opts.dLast.slice() : allocate(dtype, N * d);
  rmsnormBackward(saved.last, w.norm.data, saved.rstdFinal, dFinal, dh, g.norm.data, N, d);
  lap('head.backward');
  for (let l = config.numHiddenLayers - 1; l >= 0; l--) {
    dh = blockBackward(config, w.layers[l]!, g.layers[l]!, saved.blocks[l]!, dh, opts.dscores?.[l] ?? undefined, opts.profile);
  }
  lap();
  embeddingBackward(g.embed_tokens.data, saved.ids, dh, N, d);
  lap('embedding.backward');
}
