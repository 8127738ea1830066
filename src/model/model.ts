/**
 * `DeepSeekV3`: the whole model over a weights map keyed by HF names — forward with logits at every position
 * (SPEC §3.10), KV caches and generation (generate.ts), the numerics profiles (profile/), and the training
 * objective and its gradients (SPEC §5.4), which live in objective.ts.
 *
 * Gradients: `lossAndGrads` returns a map with one tensor per weight tensor under the same HF name.
 * `e_score_correction_bias` gets an all-zero entry (it only selects experts; no gradient flows into it,
 * SPEC §3.8 — its update is the sign rule of SPEC §5.2, done by the trainer from `loads`).
 */
import { InputError, WeightsError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { inScratchScope, scratchSupported } from '../kernels/scratch.js';
import { Tensor, withFloat32Allocator, type DType } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import type { PhaseTimer } from './block.js';
import type { ModelConfig } from './config.js';
import { flattenTokenBatch, validateTokenIds } from './embedding.js';
import type { Routing } from './gate.js';
import { generateTokens, type GenerateOptions, type GenerateResult } from './generate.js';
import { checkForwardPass, modelLimits, type ModelLimits, type ResourceOptions } from './guards.js';
import { createKVCache, type MLACache } from './kv_cache.js';
import { mtpWeightsFrom, parseMtpConcatOrder, type MTPConcatOrder, type MTPWeights } from './mtp.js';
import { parseNumericsProfile, type NumericsProfile } from './numerics.js';
import { lossAndGrads, type LossAndGradsResult, type LossOptions, type TokenBatch } from './objective.js';
import { profileForward } from './profile/forward.js';
import { ProfileWeights } from './profile/linear.js';
import { buildRopeTables, type RopeTables } from './rope.js';
import { withRoutingOverride, type RoutingOverride } from './topk.js';
import { actQuantGemm, type ActQuantOptions } from './adapters/act_quant.js';
import type { TraceFn } from './trace.js';
import { transformerForward, transformerWeightsFrom, type TransformerWeights } from './transformer.js';
import { checkWeights, type Fp8Weights, type ModelWeights } from './weights.js';

// The objective's types, where callers have always found them.
export type { LossAndGradsResult, LossOptions, MoELoad, TokenBatch } from './objective.js';

/** Token ids: rows of equal length, or a flat Int32Array [B, T] with `B` (and `T`) given in the options. */
export type TokenInput = readonly (readonly number[])[] | Int32Array;

/** Options of {@link DeepSeekV3.forward}; `topk`/`topkGroup` override the routing for this call (topk.ts). */
export interface ModelForwardOptions extends RoutingOverride {
  /** Batch rows when `ids` is flat. */
  B?: number;
  /** Positions per row when `ids` is flat (default ids.length / B). */
  T?: number;
  /** MLA implementation (default 'naive'). */
  attn?: AttnImpl;
  /** Absolute position of the first id (tokens already in `caches`). Default 0. */
  startPos?: number;
  /** One KV cache per main layer ({@link DeepSeekV3.createCaches}). */
  caches?: MLACache[];
  trace?: TraceFn;
  /** Head at every position ('all', default), only the last ('last': logits [B,1,V]) or none. */
  logits?: 'all' | 'last' | 'none';
  /** Receives the time of each phase (embedding, each block half, head); for benchmarks. */
  profile?: PhaseTimer;
  /**
   * Numerics profile (default 'exact': the model's own dtype). The official-* profiles emulate the official GPU
   * inference in bf16 or FP8 (docs/numerics-profiles.md); their results are bf16 values in float32 tensors, and
   * `caches` must come from `createCaches(attn, B, len, { numerics })`.
   */
  numerics?: NumericsProfile;
  /** Activation fake quantization per token at the selected Linears (adapters/act_quant.ts); 'exact' profile only. */
  actQuant?: ActQuantOptions;
}

/** Options of {@link DeepSeekV3} beyond the config and the weights. */
export interface DeepSeekV3Options extends ResourceOptions {
  /**
   * FP8 checkpoint tensors kept as codes and scales (from `loadWeights`/`loadModel`), by weight name. The FP8
   * profiles run these through act_quant + fp8_gemm, and official-bf16 dequantises them as the official code does;
   * `weights` holds their exact dequantised values for the exact forward.
   */
  fp8?: Fp8Weights;
  /** Halves of the MTP eh_proj input (default 'embedding-first', the released weights; mtp.ts). */
  mtpConcatOrder?: MTPConcatOrder;
}

/** Result of {@link DeepSeekV3.forward}. */
export interface ModelForwardResult {
  B: number;
  T: number;
  /** [B, T, V] (or [B, 1, V] with `logits: 'last'`). */
  logits: Tensor;
  /** Residual stream after each block, [B, T, d] each. */
  hidden: Tensor[];
  /** After the final norm (the head's input) [B, T, d]. */
  finalHidden: Tensor;
  /** Routing of every MoE layer by absolute layer index; rows ordered b·T + t. */
  routing: Map<number, Routing>;
}

/** The DeepSeek-V3 model: a config and its weights (f32 or f64; the weights' dtype is the compute precision). */
export class DeepSeekV3 {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  readonly dtype: DType;
  /** FP8 checkpoint tensors as stored (empty for a float checkpoint). */
  readonly fp8: Fp8Weights;
  /** Halves of the MTP eh_proj input, for training and speculative decoding. */
  readonly mtpConcatOrder: MTPConcatOrder;
  /** Memory budget and position policy of every pass (options maxBytes, allowLongContext; guards.ts). */
  readonly limits: ModelLimits;
  private rope: RopeTables | null = null;
  private readonly profileWeights = new Map<NumericsProfile, ProfileWeights>();

  constructor(config: ModelConfig, weights: ModelWeights, opts: DeepSeekV3Options = {}) {
    this.config = config;
    this.weights = weights;
    this.fp8 = opts.fp8 ?? new Map();
    this.mtpConcatOrder = parseMtpConcatOrder(opts.mtpConcatOrder ?? 'embedding-first', 'DeepSeekV3 option mtpConcatOrder');
    const embed = weights.get('model.embed_tokens.weight');
    if (embed === undefined) throw new WeightsError(`missing tensor 'model.embed_tokens.weight'`);
    this.dtype = embed.dtype;
    for (const [name, t] of weights) {
      if (t.dtype !== this.dtype) throw new WeightsError(`tensor '${name}' is ${t.dtype} but the model is ${this.dtype}`);
    }
    checkWeights(config, weights); // exactly the config's tensors with their shapes, else a WeightsError naming them
    this.limits = modelLimits(opts, weights.values());
  }

  /** RoPE tables covering positions [0, n) (grown on demand, angles in f64). */
  ropeTables(n: number): RopeTables {
    if (this.rope === null || this.rope.maxPositions < n) {
      // kept across calls: never from a scratch scope (withFloat32Allocator(null))
      const maxPositions = Math.max(n, 2 * (this.rope?.maxPositions ?? 0), 16);
      this.rope = withFloat32Allocator(null, () => buildRopeTables(this.config, maxPositions, this.dtype));
    }
    return this.rope;
  }

  /**
   * One KV cache per main layer for `batch` rows of up to `maxLen` tokens, in the model's dtype, or in float32 (holding
   * bf16 values) for an official-* numerics profile. f32 caches live in the wasm backend's memory when it is shared
   * (no copies per decode step); call `release()` on each cache when done, else that memory stays reserved until the
   * backend is replaced.
   */
  createCaches(attn: AttnImpl, batch: number, maxLen: number, opts: { numerics?: NumericsProfile } = {}): MLACache[] {
    const dtype = (opts.numerics ?? 'exact') === 'exact' ? this.dtype : 'float32';
    const caches: MLACache[] = [];
    for (let l = 0; l < this.config.numHiddenLayers; l++) caches.push(createKVCache(this.config, attn, batch, maxLen, dtype));
    return caches;
  }

  /** The weights as the given (non-exact) profile uses them, prepared once. */
  private weightsFor(numerics: NumericsProfile): ProfileWeights {
    let pw = this.profileWeights.get(numerics);
    if (pw === undefined) {
      pw = new ProfileWeights(this.weights, this.fp8, numerics);
      this.profileWeights.set(numerics, pw);
    }
    return pw;
  }

  /** The main-model tensors as a record. */
  mainWeights(): TransformerWeights {
    return transformerWeightsFrom(this.config, this.weights);
  }

  /** MTP depth k (1-based) tensors. */
  mtpWeights(depth: number): MTPWeights {
    return mtpWeightsFrom(this.config, this.weights, depth);
  }

  /** Forward at every position (SPEC §3.10). Ids out of range or ragged rows give an InputError. */
  forward(ids: TokenInput, opts: ModelForwardOptions = {}): ModelForwardResult {
    const { ids: flat, B, T } = toFlatIds(ids, opts.B, opts.T);
    validateTokenIds(flat, B, T, this.config.vocabSize);
    const startPos = opts.startPos ?? 0;
    if (!Number.isInteger(startPos) || startPos < 0) throw new InputError(`forward: startPos must be a non-negative integer, got ${startPos}`);
    const mode = opts.logits ?? 'all';
    checkForwardPass(this.config, this.dtype, this.limits, B, T, startPos, opts.attn ?? 'naive', mode);
    const numerics = parseNumericsProfile(opts.numerics ?? 'exact', 'forward: numerics');
    if (numerics !== 'exact' && opts.actQuant !== undefined) throw new InputError(`forward: actQuant runs in the 'exact' profile only, got numerics '${numerics}'`);
    if (numerics !== 'exact') return this.forwardProfile(numerics, flat, B, T, startPos, mode, opts);
    const rope = this.ropeTables(startPos + T);
    const run = () =>
      transformerForward(withRoutingOverride(this.config, opts, 'forward'), this.mainWeights(), flat, B, T, {
        startPos,
        attn: opts.attn ?? 'naive',
        ...(opts.actQuant !== undefined ? { gemm: actQuantGemm(this.weights, opts.actQuant, opts.attn ?? 'naive', 'forward') } : {}),
        ...(opts.caches !== undefined ? { caches: opts.caches } : {}),
        rope,
        ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
        ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
        logits: mode,
      });
    // Without a trace (which may keep what it receives) the intermediates live in a scratch scope when the f32
    // backend's memory is shared (kernels/scratch.ts); what the call returns is copied out of it. The caches are
    // written in place and live outside.
    const k = kernelsFor(this.dtype);
    const scoped = opts.trace === undefined && opts.actQuant === undefined && scratchSupported(k);
    const out = scoped
      ? inScratchScope(k, () => {
          const o = run();
          return {
            ...o,
            logits: o.logits.slice(),
            hidden: o.hidden.map((h) => h.slice()),
            finalHidden: o.finalHidden.slice(),
            routing: o.routing.map((r) => (r === null ? null : detachRouting(r))),
          };
        })
      : run();
    const d = this.config.hiddenSize;
    const V = this.config.vocabSize;
    const routing = new Map<number, Routing>();
    out.routing.forEach((r, l) => {
      if (r !== null) routing.set(l, r);
    });
    return {
      B,
      T,
      logits: new Tensor(mode === 'all' ? [B, T, V] : mode === 'last' ? [B, 1, V] : [0], out.logits),
      hidden: out.hidden.map((h) => new Tensor([B, T, d], h)),
      finalHidden: new Tensor([B, T, d], out.finalHidden),
      routing,
    };
  }

  /** {@link forward} under an official-* numerics profile (src/model/profile/). */
  private forwardProfile(
    numerics: NumericsProfile,
    ids: Int32Array,
    B: number,
    T: number,
    startPos: number,
    mode: 'all' | 'last' | 'none',
    opts: ModelForwardOptions,
  ): ModelForwardResult {
    const out = profileForward(withRoutingOverride(this.config, opts, 'forward'), this.weightsFor(numerics), ids, B, T, {
      startPos,
      attn: opts.attn ?? 'naive',
      ...(opts.caches !== undefined ? { caches: opts.caches } : {}),
      ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
      logits: mode,
    });
    const d = this.config.hiddenSize;
    const V = this.config.vocabSize;
    return {
      B,
      T,
      logits: new Tensor(mode === 'all' ? [B, T, V] : mode === 'last' ? [B, 1, V] : [0], out.logits),
      hidden: out.hidden.map((h) => new Tensor([B, T, d], h)),
      finalHidden: new Tensor([B, T, d], out.finalHidden),
      routing: out.routing,
    };
  }

  /**
   * The training objective and its gradients (SPEC §5.4): L = L_main + L_MTP + Σ_layers L_Bal; see objective.ts.
   * Accepts a {@link TokenBatch} or rows of T+1 ids.
   */
  lossAndGrads(batch: TokenBatch | readonly (readonly number[])[], opts: LossOptions = {}): LossAndGradsResult {
    const k = kernelsFor(this.dtype);
    // The plain exact step keeps its activations in the wasm backend's memory (kernels/scratch.ts: no operand copies,
    // no fresh arrays). Nothing allocated there may outlive the call: the gradients are allocated outside it and the
    // routing is copied out. A trace, which may keep what it receives, and the Linear-site modes run as they are.
    const plain = opts.trace === undefined && opts.linearGemm === undefined && opts.actQuant === undefined && (opts.numerics ?? 'exact') === 'exact';
    if (!plain || !scratchSupported(k)) return lossAndGrads(this, batch, opts);
    const grads = opts.grads ?? new Map([...this.weights].map(([name, t]) => [name, Tensor.zeros(t.shape, t.dtype)]));
    const r = inScratchScope(k, () => lossAndGrads(this, batch, { ...opts, grads }));
    const routing = new Map([...r.routing].map(([l, x]) => [l, detachRouting(x)]));
    return { ...r, routing };
  }

  /** Autoregressive generation (greedy, temperature/top-p sampling, or speculative with MTP); see generate.ts. */
  generate(prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
    return generateTokens(this, prompt, opts);
  }
}

/** Normalises token input to a flat [B, T] Int32Array. */
function toFlatIds(ids: TokenInput, B?: number, T?: number): { ids: Int32Array; B: number; T: number } {
  if (ids instanceof Int32Array) {
    const rows = B ?? 1;
    const cols = T ?? ids.length / rows;
    if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(cols) || cols < 1 || rows * cols !== ids.length) {
      throw new InputError(`token ids: ${ids.length} ids do not form a [B=${rows}, T=${String(T ?? cols)}] batch`);
    }
    return { ids, B: rows, T: cols };
  }
  return flattenTokenBatch(ids);
}

/** A routing whose f32 arrays are ordinary copies (out of a scratch scope; the index arrays are never scoped). */
function detachRouting(r: Routing): Routing {
  return { ...r, weights: r.weights.slice(), scores: r.scores.slice() };
}
