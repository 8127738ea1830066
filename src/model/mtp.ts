/**
 * Multi-Token Prediction modules (SPEC §4). Depth k (1-based; stored as layer L + k − 1) owns enorm, hnorm,
 * eh_proj (M_k), a full block TRM_k and shared_head.norm; it shares the embedding and lm_head with the main model.
 *
 *   h'ᵏ[j] = eh_proj([enorm(Emb(inputs[j+k])) ; hnorm(hᵏ⁻¹[j])])   (EMBEDDING FIRST: the released eh_proj
 *                                                                    columns 0..d−1 multiply the embedding)
 *   or, with concat order 'hidden-first' (the tech report's equation 21), eh_proj([hnorm(hᵏ⁻¹[j]) ; enorm(Emb(inputs[j+k]))]).
 *   hᵏ = TRM_k(h'ᵏ)  (causal, over the S_k = T − k positions j that have a target)
 *   logitsᵏ[j] = lm_head(shared_head.norm(hᵏ[j]))  → predicts labels[j+k]
 *
 * Trace names (prefix `model.layers.{L+k−1}`): `{prefix}.enorm:out`, `{prefix}.hnorm:out`, `{prefix}.eh_proj:out`,
 * the block traces, `{prefix}.shared_head.norm:out`, `{prefix}.shared_head.head:out` (logits).
 */
import { InputError } from '../errors.js';
import { linearBackward, linearForward, type LinearGemm, type LinearSite } from '../ops/linear.js';
import { allocate, dtypeOf, type FloatArray, type Tensor } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import { blockBackward, blockForward, blockWeightsFrom, layerPrefix, type BlockSaved, type BlockWeights } from './block.js';
import type { ModelConfig } from './config.js';
import { embeddingBackward, embeddingForward } from './embedding.js';
import type { Routing } from './gate.js';
import type { MLACache } from './kv_cache.js';
import type { RopeTables } from './rope.js';
import type { TraceFn } from './trace.js';
import { requireTensor } from '../ops/tensors.js';
import type { ModelWeights } from './weights.js';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.js';

/**
 * Order of the two halves of eh_proj's input: 'embedding-first' = [enorm(Emb); hnorm(h)] (the released weights and
 * the official code), 'hidden-first' = [hnorm(h); enorm(Emb)] (the tech report's equation 21).
 */
export type MTPConcatOrder = 'embedding-first' | 'hidden-first';

/** Checks a concat order given at run time (JavaScript callers, CLI strings); `where` names the option. */
export function parseMtpConcatOrder(v: unknown, where: string): MTPConcatOrder {
  if (v === 'embedding-first' || v === 'hidden-first') return v;
  throw new InputError(`${where}: MTP concat order must be 'embedding-first' or 'hidden-first', got ${JSON.stringify(v)}`);
}

/** The tensors of one MTP depth (the same record holds the gradients). */
export interface MTPWeights {
  /** Absolute layer index L + k − 1 of this depth. */
  index: number;
  /** `enorm.weight` [d], the RMSNorm of the token embedding. */
  enorm: Tensor;
  /** `hnorm.weight` [d], the RMSNorm of the previous depth's hidden state. */
  hnorm: Tensor;
  /** `eh_proj.weight` [d, 2d], the projection M_k. */
  eh_proj: Tensor;
  block: BlockWeights;
  /** `shared_head.norm.weight` [d], this module's own final norm (not `model.norm`). */
  shared_head_norm: Tensor;
}

/** The main-model tensors every depth shares. */
export interface MTPShared {
  embed_tokens: Tensor;
  lm_head: Tensor;
}

/** Views depth `depth` (1-based) out of a weights (or gradients) map; the prefix is computed from num_hidden_layers. */
export function mtpWeightsFrom(config: ModelConfig, weights: ModelWeights, depth: number): MTPWeights {
  const index = config.numHiddenLayers + depth - 1;
  const p = layerPrefix(index);
  return {
    index,
    enorm: requireTensor(weights, `${p}.enorm.weight`),
    hnorm: requireTensor(weights, `${p}.hnorm.weight`),
    eh_proj: requireTensor(weights, `${p}.eh_proj.weight`),
    block: blockWeightsFrom(config, weights, index),
    shared_head_norm: requireTensor(weights, `${p}.shared_head.norm.weight`),
  };
}

/** Options of {@link mtpForward}. */
export interface MTPForwardOptions {
  /** RoPE position of the first row (RoPE is relative, so any constant offset gives the same attention). */
  startPos?: number;
  rope: RopeTables;
  attn?: AttnImpl;
  cache?: MLACache;
  save?: boolean;
  trace?: TraceFn;
  /** Compute logits (default true). */
  logits?: boolean;
  /** Halves of eh_proj's input (default 'embedding-first', the released weights). */
  concatOrder?: MTPConcatOrder;
  /** GEMMs of eh_proj and the block's Linears (the shared head stays exact). Default exact. */
  gemm?: LinearGemm;
}

/** What {@link mtpBackward} needs. */
export interface MTPSaved {
  B: number;
  S: number;
  tokens: Int32Array;
  /** Column offsets of the embedding half and the hidden half in `cat` (0 and d, or d and 0). */
  embAt: number;
  hidAt: number;
  emb: FloatArray;
  hPrev: FloatArray;
  rstdE: FloatArray;
  rstdH: FloatArray;
  cat: FloatArray;
  block: BlockSaved;
  y: FloatArray;
  rstdOut: FloatArray;
  z: FloatArray;
  /** eh_proj's call site as the forward ran it (undefined: exact). */
  ehSite: LinearSite | undefined;
}

/** Output of {@link mtpForward}. */
export interface MTPOutput {
  /** [B,S,V] (empty when `logits: false`). */
  logits: FloatArray;
  /** Block output hᵏ before shared_head.norm [B,S,d]. */
  hidden: FloatArray;
  /** shared_head.norm(hᵏ) [B,S,d] (the head's input). */
  normed: FloatArray;
  routing: Routing | null;
  saved: MTPSaved | null;
}

/**
 * One MTP depth on B rows of S positions: `hPrev` [B,S,d] is hᵏ⁻¹ at those positions and `tokens` [B,S]
 * the ids whose embeddings are combined with it (inputs[j+k]).
 */
export function mtpForward(
  config: ModelConfig,
  w: MTPWeights,
  shared: MTPShared,
  hPrev: FloatArray,
  tokens: Int32Array,
  B: number,
  S: number,
  opts: MTPForwardOptions,
): MTPOutput {
  const dtype = dtypeOf(hPrev);
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const N = B * S;
  const eps = config.rmsNormEps;
  const prefix = layerPrefix(w.index);
  const trace = opts.trace;
  const save = opts.save ?? false;

  const emb = embeddingForward(shared.embed_tokens.data, tokens, N, d);
  const { y: en, rstd: rstdE } = rmsnormForward(emb, w.enorm.data, N, d, eps);
  trace?.(`${prefix}.enorm:out`, [B, S, d], en);
  const { y: hn, rstd: rstdH } = rmsnormForward(hPrev, w.hnorm.data, N, d, eps);
  trace?.(`${prefix}.hnorm:out`, [B, S, d], hn);
  // cat[n] = [enorm(emb) ; hnorm(h)]: embedding first, as the released eh_proj expects (SPEC §4.1);
  // hidden-first swaps the halves (tech report eq. 21)
  const hiddenFirst = parseMtpConcatOrder(opts.concatOrder ?? 'embedding-first', 'mtpForward: concatOrder') === 'hidden-first';
  const embAt = hiddenFirst ? d : 0;
  const hidAt = hiddenFirst ? 0 : d;
  const cat = allocate(dtype, N * 2 * d);
  for (let n = 0; n < N; n++) {
    cat.set(en.subarray(n * d, n * d + d), n * 2 * d + embAt);
    cat.set(hn.subarray(n * d, n * d + d), n * 2 * d + hidAt);
  }
  // under FP8 training eh_proj is a Linear like any other unless fp8Train.ehProj = 'high'
  const ehSite: LinearSite | undefined =
    opts.gemm !== undefined && !(opts.gemm.kind === 'fp8-train' && opts.gemm.config.ehProj === 'high') ? { gemm: opts.gemm, name: `${prefix}.eh_proj` } : undefined;
  const x = linearForward(cat, w.eh_proj.data, N, d, 2 * d, ehSite);
  trace?.(`${prefix}.eh_proj:out`, [B, S, d], x);
  const blk = blockForward(config, w.block, x, B, S, {
    index: w.index,
    startPos: opts.startPos ?? 0,
    rope: opts.rope,
    attn: opts.attn ?? 'naive',
    ...(opts.cache !== undefined ? { cache: opts.cache } : {}),
    save,
    ...(trace !== undefined ? { trace } : {}),
    ...(opts.gemm !== undefined ? { gemm: opts.gemm } : {}),
  });
  const y = blk.out;
  const { y: z, rstd: rstdOut } = rmsnormForward(y, w.shared_head_norm.data, N, d, eps);
  trace?.(`${prefix}.shared_head.norm:out`, [B, S, d], z);
  let logits: FloatArray = allocate(dtype, 0);
  if (opts.logits ?? true) {
    logits = linearForward(z, shared.lm_head.data, N, V, d);
    trace?.(`${prefix}.shared_head.head:out`, [B, S, V], logits);
  }
  const saved: MTPSaved | null = save
    ? { B, S, tokens, embAt, hidAt, emb, hPrev, rstdE, rstdH, cat, block: blk.saved!, y, rstdOut, z, ehSite }
    : null;
  return { logits, hidden: y, normed: z, routing: blk.routing, saved };
}

/** Upstream gradients of one depth besides its logits. */
export interface MTPBackwardOptions {
  /** Gradient w.r.t. `normed` [B,S,d] (the next depth's input with mtpHidden 'post_norm'). */
  dNormed?: FloatArray;
  /** Gradient w.r.t. `hidden` [B,S,d] (the next depth's input with mtpHidden 'pre_norm'). */
  dHidden?: FloatArray;
  /** Balance-loss gradient w.r.t. this block's router scores [N,E]. */
  dscores?: FloatArray;
}

/**
 * Backward of {@link mtpForward}: accumulates into `g` and `sharedGrads` (embedding rows, lm_head) and returns
 * dhPrev [B,S,d] (fresh).
 */
export function mtpBackward(
  config: ModelConfig,
  w: MTPWeights,
  g: MTPWeights,
  shared: MTPShared,
  sharedGrads: MTPShared,
  saved: MTPSaved,
  dlogits: FloatArray | null,
  opts: MTPBackwardOptions = {},
): FloatArray {
  const dtype = dtypeOf(saved.hPrev);
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const N = saved.B * saved.S;

  // logits = z·W_headᵀ (shared head)
  const dz = opts.dNormed !== undefined ? opts.dNormed.slice() : allocate(dtype, N * d);
  if (dlogits !== null) linearBackward(saved.z, shared.lm_head.data, dlogits, sharedGrads.lm_head.data, N, V, d, dz);
  // z = shared_head.norm(y)
  const dy = opts.dHidden !== undefined ? opts.dHidden.slice() : allocate(dtype, N * d);
  rmsnormBackward(saved.y, w.shared_head_norm.data, saved.rstdOut, dz, dy, g.shared_head_norm.data, N, d);
  // y = TRM_k(x)
  const dx = blockBackward(config, w.block, g.block, saved.block, dy, opts.dscores);
  // x = cat·eh_projᵀ
  const dcat = linearBackward(saved.cat, w.eh_proj.data, dx, g.eh_proj.data, N, d, 2 * d, undefined, saved.ehSite);
  const den = allocate(dtype, N * d);
  const dhn = allocate(dtype, N * d);
  const { embAt, hidAt } = saved;
  for (let n = 0; n < N; n++) {
    den.set(dcat.subarray(n * 2 * d + embAt, n * 2 * d + embAt + d), n * d);
    dhn.set(dcat.subarray(n * 2 * d + hidAt, n * 2 * d + hidAt + d), n * d);
  }
  // en = enorm(emb), emb = E_tok[tokens]
  const demb = allocate(dtype, N * d);
  rmsnormBackward(saved.emb, w.enorm.data, saved.rstdE, den, demb, g.enorm.data, N, d);
  embeddingBackward(sharedGrads.embed_tokens.data, saved.tokens, demb, N, d);
  // hn = hnorm(hPrev)
  const dhPrev = allocate(dtype, N * d);
  rmsnormBackward(saved.hPrev, w.hnorm.data, saved.rstdH, dhn, dhPrev, g.hnorm.data, N, d);
  return dhPrev;
}

/** Rows [B, S, d] → the first S2 ≤ S positions of each row, [B, S2, d] (fresh). */
export function slicePositions(x: FloatArray, B: number, S: number, S2: number, d: number): FloatArray {
  const out = allocate(dtypeOf(x), B * S2 * d);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * S * d, (b * S + S2) * d), b * S2 * d);
  return out;
}

/** Backward of {@link slicePositions}: dx[b, j] += dslice[b, j] for j < S2. */
export function slicePositionsBackward(dslice: FloatArray, dx: FloatArray, B: number, S: number, S2: number, d: number): void {
  for (let b = 0; b < B; b++) {
    const o = b * S * d;
    const so = b * S2 * d;
    for (let i = 0; i < S2 * d; i++) dx[o + i] = dx[o + i]! + dslice[so + i]!;
  }
}
