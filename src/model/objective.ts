/**
 * The training objective (SPEC §5.4) and its gradients: L = L_main + L_MTP + Σ_layers L_Bal over a batch of rows of
 * T+1 ids (inputs ids[:, :T], targets ids[:, 1:]):
 * - L_main: next-token cross-entropy at every position (loss.ts);
 * - L_MTP = λ/D · Σ_k L^k, depth k predicting the token k+1 ahead (mtp.ts);
 * - L_Bal: the complementary sequence-wise balance loss of every MoE layer (balance_loss.ts).
 * Returns one gradient per weight (HF names; the router bias gets zeros: it only selects experts) and the per-layer
 * loads that the bias update (train/bias_update.ts) consumes. Kept apart from the model class, which only forwards.
 */
import { InputError } from '../errors.js';
import type { LinearGemm, TrainNumerics } from '../ops/linear.js';
import { linearGemmFor } from '../ops/linear.js';
import type { Fp8TrainOptions } from '../ops/fp8_train.js';
import { allocate, Tensor, type FloatArray } from '../tensor.js';
import { actQuantGemm, type ActQuantOptions } from './adapters/act_quant.js';
import type { AttnImpl } from './attention.js';
import { sequenceBalanceLoss } from './balance_loss.js';
import { layerPrefix, phaseLaps, type PhaseTimer } from './block.js';
import { hasRouterBias } from './config.js';
import { flattenTokenBatch, validateTokenIds } from './embedding.js';
import type { Routing } from './gate.js';
import { checkTrainingPass } from './guards.js';
import { crossEntropyLoss, crossEntropyLossBackward, validateTargets } from './loss.js';
import type { DeepSeekV3 } from './model.js';
import { mtpBackward, mtpForward, mtpWeightsFrom, slicePositions, slicePositionsBackward, type MTPOutput, type MTPWeights } from './mtp.js';
import { withRoutingOverride, type RoutingOverride } from './topk.js';
import type { TraceFn } from './trace.js';
import { transformerBackward, transformerForward, transformerWeightsFrom } from './transformer.js';
import type { ModelWeights } from './weights.js';

/** A batch for {@link DeepSeekV3.lossAndGrads}: ids [B, T+1]; inputs ids[:, :T], targets ids[:, 1:]. */
export interface TokenBatch {
  /** [B, T+1] row-major. */
  ids: Int32Array;
  B: number;
  /** Positions predicted per row (ids has T+1 columns). */
  T: number;
  /** Optional targets [B, T] overriding ids[:, 1:]; −100 = ignore. */
  labels?: Int32Array;
}

/** Options of {@link DeepSeekV3.lossAndGrads}; `topk`/`topkGroup` override the routing for this call (topk.ts). */
export interface LossOptions extends RoutingOverride {
  /** Attention path for the training forward (both compute the same function; default 'naive'). */
  attn?: AttnImpl;
  /** Include the MTP loss (default: true iff num_nextn_predict_layers > 0). */
  mtp?: boolean;
  /** λ of L_MTP = λ/D·Σ_k L^k (default 0.3, the paper's first phase). */
  mtpLambda?: number;
  /** Normalise each L^k by T per sequence (paper, default) or by its number of valid targets. */
  mtpNormalisation?: 'paper' | 'valid_tokens';
  /** Hidden state fed to the next depth: after the final norm (default, as the serving engines) or before it. */
  mtpHidden?: 'post_norm' | 'pre_norm';
  /** α of the complementary sequence-wise balance loss (default 1e-4); 0 switches it off. */
  balanceAlpha?: number;
  /** Options passed to `sequenceBalanceLoss` (e.g. the literal top-k reading). */
  balanceOptions?: Parameters<typeof sequenceBalanceLoss>[5];
  /**
   * Denominator of the main CE (default: the batch's non-ignored target count). Gradient accumulation passes
   * the global target count (SPEC §5.8).
   */
  mainDenominator?: number;
  trace?: TraceFn;
  /** Receives the time of each phase of the forward, the losses and the backward; for benchmarks. */
  profile?: PhaseTimer;
  /**
   * Training numerics (default 'exact'). 'fp8-train' runs every Linear's Fprop, Dgrad and Wgrad as block-scaled FP8
   * (tech report §3.3; the embedding, head, gate, norms and attention core stay exact): docs/components/fp8-training.md.
   * With `trace`, each FP8 GEMM's quantized operands are traced too. Needs attn 'naive'.
   */
  numerics?: TrainNumerics;
  /** Knobs of 'fp8-train' (scale format, amax clamp, eh_proj, disableQuant). */
  fp8Train?: Fp8TrainOptions;
  /** Activation fake quantization per token at the selected Linears, STE backward (adapters/act_quant.ts); numerics 'exact' only. */
  actQuant?: ActQuantOptions;
  /** A Linear-site mode from the caller, e.g. LoRA dropout (TransformedModel); not with fp8-train or actQuant. */
  linearGemm?: LinearGemm;
  /**
   * Buffers to write the gradients into (zeroed first; returned as `grads`) instead of fresh arrays: one per weight,
   * same name, size and dtype. A training loop passes the same ones every step, e.g. resident ones
   * (`allocateResident`), so the weight-gradient matmuls accumulate into wasm memory without copies.
   */
  grads?: ModelWeights;
}

/** Routing load of one MoE layer, for the bias update (SPEC §5.2). */
export interface MoELoad {
  /** Absolute layer index (MTP layers are L + k − 1). */
  layer: number;
  /** HF name of the layer's router bias. */
  biasName: string;
  /** [E] (token, slot) assignments per expert in this batch. */
  load: Int32Array;
}

/** Result of {@link DeepSeekV3.lossAndGrads}. */
export interface LossAndGradsResult {
  loss: { main: number; mtp: number; balance: number; total: number; mtpPerDepth: number[] };
  /** One gradient per weight tensor, same HF names and shapes (bias: zeros). */
  grads: ModelWeights;
  /** Per MoE layer (main, then MTP) whose router has a bias (topk_method 'noaux_tc'); empty otherwise. */
  loads: MoELoad[];
  /** Non-ignored main targets in the batch. */
  targets: number;
  /** Routing of every MoE layer by absolute index (MTP blocks at L + k − 1); rows b·S + j. */
  routing: Map<number, Routing>;
}

/**
 * The training objective of `model` and its gradients (SPEC §5.4): L = L_main + L_MTP + Σ_layers L_Bal.
 * Accepts a {@link TokenBatch} or rows of T+1 ids. `model.lossAndGrads(batch, opts)` calls model.
 */
export function lossAndGrads(model: DeepSeekV3, batch: TokenBatch | readonly (readonly number[])[], opts: LossOptions = {}): LossAndGradsResult {
  const cfg = withRoutingOverride(model.config, opts, 'lossAndGrads');
  const { ids, B, T, labels: labelsIn } = toTokenBatch(batch);
  if (T < 1) throw new InputError('lossAndGrads: rows need at least 2 ids (T ≥ 1 predicted positions)');
  validateTokenIds(ids, B, T + 1, cfg.vocabSize);
  checkTrainingPass(cfg, model.dtype, model.limits, B, T);
  const d = cfg.hiddenSize;
  const V = cfg.vocabSize;
  const dtype = model.dtype;
  // inputs = ids[:, :T], labels = ids[:, 1:] (or the given labels)
  const inputs = new Int32Array(B * T);
  const labels = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = ids[b * (T + 1) + t]!;
      labels[b * T + t] = labelsIn !== undefined ? labelsIn[b * T + t]! : ids[b * (T + 1) + t + 1]!;
    }
  }
  if (labelsIn !== undefined) {
    if (labelsIn.length !== B * T) throw new InputError(`lossAndGrads: labels have ${labelsIn.length} entries, expected B·T = ${B * T}`);
    validateTargets(labels, B * T, V, 'label');
  }
  const useMtp = (opts.mtp ?? cfg.numNextnPredictLayers > 0) && cfg.numNextnPredictLayers > 0;
  const D = useMtp ? cfg.numNextnPredictLayers : 0;
  const lambda = opts.mtpLambda ?? 0.3;
  const mtpHidden = opts.mtpHidden ?? 'post_norm';
  const alpha = opts.balanceAlpha ?? 1e-4;
  const attn = opts.attn ?? 'naive';
  const rope = model.ropeTables(T);
  const trace = opts.trace;
  if (opts.actQuant !== undefined && (opts.numerics ?? 'exact') !== 'exact') throw new InputError(`lossAndGrads: actQuant runs with numerics 'exact' only, got '${opts.numerics}'`);
  if (opts.linearGemm !== undefined && (opts.actQuant !== undefined || (opts.numerics ?? 'exact') !== 'exact')) throw new InputError(`lossAndGrads: linearGemm cannot be combined with actQuant or numerics '${opts.numerics}'`);
  const gemm = opts.linearGemm ?? (opts.actQuant !== undefined ? actQuantGemm(model.weights, opts.actQuant, attn, 'lossAndGrads') : linearGemmFor(opts.numerics, opts.fp8Train, trace));
  // the absorbed path folds kv_b_proj into the attention core (kept exact), which would bypass its FP8 GEMM
  if (opts.numerics === 'fp8-train' && attn !== 'naive') throw new InputError(`lossAndGrads: numerics 'fp8-train' needs attn 'naive', got '${attn}'`);
  const profile = opts.profile;
  const lap = phaseLaps(profile);

  const w = model.mainWeights();
  const grads: ModelWeights = opts.grads ?? new Map();
  for (const [name, t] of model.weights) {
    if (opts.grads === undefined) {
      grads.set(name, new Tensor(t.shape, allocate(dtype, t.size)));
      continue;
    }
    const b = opts.grads.get(name);
    if (b === undefined || b.size !== t.size || b.dtype !== dtype) {
      throw new InputError(`lossAndGrads: opts.grads['${name}'] is ${b === undefined ? 'missing' : `${b.dtype}[${b.shape.join(', ')}]`}; the weight is ${dtype}[${t.shape.join(', ')}]`);
    }
    b.data.fill(0);
  }
  lap('grads.zero');
  const g = transformerWeightsFrom(cfg, grads);
  const shared = { embed_tokens: w.embed_tokens, lm_head: w.lm_head };
  const sharedGrads = { embed_tokens: g.embed_tokens, lm_head: g.lm_head };

  // main model
  const main = transformerForward(cfg, w, inputs, B, T, {
    attn,
    rope,
    save: true,
    gemm,
    ...(trace !== undefined ? { trace } : {}),
    ...(profile !== undefined ? { profile } : {}),
  });
  lap();
  const ce = crossEntropyLoss(main.logits, labels, B * T, V, opts.mainDenominator !== undefined ? { denominator: opts.mainDenominator } : {});
  const dlogits = allocate(dtype, B * T * V);
  crossEntropyLossBackward(main.logits, labels, dlogits, B * T, V, ce.denominator);
  lap('loss');

  // MTP depths k = 1..D on S_k = T − k positions
  const depths: { w: MTPWeights; g: MTPWeights; S: number; out: MTPOutput; dlogits: FloatArray }[] = [];
  const mtpPerDepth: number[] = [];
  let mtpLoss = 0;
  let hPrev = mtpHidden === 'post_norm' ? main.finalHidden : main.hidden[cfg.numHiddenLayers - 1]!;
  let SPrev = T;
  for (let k = 1; k <= D && T - k >= 1; k++) {
    const S = T - k;
    const tokens = new Int32Array(B * S);
    const targets = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < S; j++) {
        tokens[b * S + j] = inputs[b * T + j + k]!; // Emb(inputs[j+k])
        targets[b * S + j] = labels[b * T + j + k]!; // predicts labels[j+k]
      }
    }
    const mw = mtpWeightsFrom(cfg, model.weights, k);
    const mg = mtpWeightsFrom(cfg, grads, k);
    const out = mtpForward(cfg, mw, shared, slicePositions(hPrev, B, SPrev, S, d), tokens, B, S, {
      rope,
      attn,
      save: true,
      concatOrder: model.mtpConcatOrder,
      gemm,
      ...(trace !== undefined ? { trace } : {}),
    });
    // L^k = −(1/T)·Σ log P (paper: normalised by T per sequence, i.e. B·T over the batch) or by valid targets
    const denom = (opts.mtpNormalisation ?? 'paper') === 'paper' ? B * T : undefined;
    const ceK = crossEntropyLoss(out.logits, targets, B * S, V, denom !== undefined ? { denominator: denom } : {});
    mtpPerDepth.push(ceK.loss);
    mtpLoss += (lambda / D) * ceK.loss;
    const dl = allocate(dtype, B * S * V);
    if (ceK.denominator > 0) crossEntropyLossBackward(out.logits, targets, dl, B * S, V, ceK.denominator * (D / lambda));
    depths.push({ w: mw, g: mg, S, out, dlogits: dl });
    hPrev = mtpHidden === 'post_norm' ? out.normed : out.hidden;
    SPrev = S;
  }
  if (depths.length > 0) lap('mtp.forward');

  // complementary sequence-wise balance loss per MoE layer (main and MTP), SPEC §5.3
  let balance = 0;
  const loads: MoELoad[] = [];
  const mainDscores: (FloatArray | null)[] = main.routing.map(() => null);
  const depthDscores: (FloatArray | null)[] = depths.map(() => null);
  const routingByLayer = new Map<number, Routing>();
  const addLayer = (layer: number, routing: Routing, Tseq: number): FloatArray | null => {
    routingByLayer.set(layer, routing);
    // a router without e_score_correction_bias (topk_method 'greedy') has nothing to update: no entry
    if (hasRouterBias(cfg)) loads.push({ layer, biasName: `${layerPrefix(layer)}.mlp.gate.e_score_correction_bias`, load: routing.load });
    if (alpha === 0) return null;
    const bl = sequenceBalanceLoss(cfg, routing, B, Tseq, alpha, opts.balanceOptions);
    balance += bl.loss;
    return bl.dscores;
  };
  main.routing.forEach((r, l) => {
    if (r !== null) mainDscores[l] = addLayer(l, r, T);
  });
  depths.forEach((dp, i) => {
    if (dp.out.routing !== null) depthDscores[i] = addLayer(dp.w.index, dp.out.routing, dp.S);
  });
  lap('balance');

  // backward: deepest depth first; each passes dhPrev to the depth before it, depth 1 to the main model
  let dNext: FloatArray | null = null;
  for (let i = depths.length - 1; i >= 0; i--) {
    const dp = depths[i]!;
    let dOut: FloatArray | undefined;
    if (dNext !== null) {
      dOut = allocate(dtype, B * dp.S * d);
      slicePositionsBackward(dNext, dOut, B, dp.S, depths[i + 1]!.S, d);
    }
    const ds = depthDscores[i] ?? undefined;
    dNext = mtpBackward(cfg, dp.w, dp.g, shared, sharedGrads, dp.out.saved!, dp.dlogits, {
      ...(dOut !== undefined ? (mtpHidden === 'post_norm' ? { dNormed: dOut } : { dHidden: dOut }) : {}),
      ...(ds !== undefined ? { dscores: ds } : {}),
    });
  }
  let dMain: FloatArray | undefined;
  if (dNext !== null) {
    dMain = allocate(dtype, B * T * d);
    slicePositionsBackward(dNext, dMain, B, T, depths[0]!.S, d);
  }
  if (depths.length > 0) lap('mtp.backward');
  transformerBackward(cfg, w, g, main.saved!, dlogits, {
    ...(dMain !== undefined ? (mtpHidden === 'post_norm' ? { dFinalHidden: dMain } : { dLast: dMain }) : {}),
    dscores: mainDscores,
    ...(profile !== undefined ? { profile } : {}),
  });

  return {
    loss: { main: ce.loss, mtp: mtpLoss, balance, total: ce.loss + mtpLoss + balance, mtpPerDepth },
    grads,
    loads,
    targets: ce.count,
    routing: routingByLayer,
  };
}

/** Normalises a training batch: rows of T+1 ids or a {@link TokenBatch}. */
function toTokenBatch(batch: TokenBatch | readonly (readonly number[])[]): { ids: Int32Array; B: number; T: number; labels?: Int32Array } {
  if (Array.isArray(batch)) {
    const f = flattenTokenBatch(batch as readonly (readonly number[])[]);
    return { ids: f.ids, B: f.B, T: f.T - 1 };
  }
  const tb = batch as TokenBatch;
  if (!Number.isInteger(tb.B) || tb.B < 1 || !Number.isInteger(tb.T) || tb.ids.length !== tb.B * (tb.T + 1)) {
    throw new InputError(`lossAndGrads: ids have ${tb.ids.length} entries, expected B·(T+1) = ${tb.B}·${tb.T + 1}`);
  }
  return tb.labels !== undefined ? { ids: tb.ids, B: tb.B, T: tb.T, labels: tb.labels } : { ids: tb.ids, B: tb.B, T: tb.T };
}
