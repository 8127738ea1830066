/**
 * LoRA (Hu et al. 2021) on any set of Linear weights chosen by HF-name glob (docs/components/lora.md):
 *
 *   W_eff = W + s·B·A,  s = α/r,  A [r, in], B [out, r];  W frozen, A and B trained
 *   backward (from the ordinary dL/dW_eff):  dA = s·Bᵀ·dW_eff,  dB = s·dW_eff·Aᵀ
 *
 * The effective weight is materialised before the forward (a weight transform, transform.ts), so every op and
 * both attention paths run unchanged. Init as PEFT: A ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5), B = 0,
 * so a fresh adapter leaves the model's function unchanged. Save/load in the PEFT layout
 * (`base_model.model.<module>.lora_A.weight` / `lora_B.weight` + adapter_config.json).
 * Dropout on the LoRA input (PEFT's lora_dropout) runs as a branch of the Linear op during training
 * (src/ops/lora_branch.ts): only lossAndGrads through a TransformedModel, never the forward (inference = eval mode).
 */
import { FormatError, InputError, WeightsError } from '../../errors.js';
import { fromFloatArray, parseSafetensors, serializeSafetensors, toFloatTensor, type SafetensorsFloatDType, type SafetensorsTensor } from '../../io/safetensors.js';
import { kernelsFor } from '../../kernels/index.js';
import { Random } from '../../random.js';
import { allocate, Tensor, type DType, type FloatArray } from '../../tensor.js';
import type { ModelWeights } from '../weights.js';
import { linearModules, selectModules } from './glob.js';
import type { LoraBranch, LoraDropoutGemm } from '../../ops/lora_branch.js';
import type { WeightTransform } from './transform.js';

/** Options of {@link LoraAdapter.create}. */
export interface LoraOptions {
  /** Module globs over HF weight names without `.weight`, e.g. `*.self_attn.q_b_proj`, `*.mlp.experts.*.down_proj`. */
  targets: string | readonly string[];
  /** Rank r. */
  r: number;
  /** α (default 8, PEFT's lora_alpha default); the update is scaled by α/r. */
  alpha?: number;
  /** Seed of A's init (default 0). */
  seed?: number;
  /** Dropout probability p ∈ [0, 1) on the LoRA input during training (default 0). */
  dropout?: number;
  /** Seed of the dropout masks (default 0); pass k's masks come from (dropoutSeed, k). */
  dropoutSeed?: number;
}

/** PEFT's prefix of every adapter tensor name. */
export const PEFT_PREFIX = 'base_model.model.';

/** The PEFT names of the two factors of `module`. */
export function loraParamNames(module: string): { A: string; B: string } {
  return { A: `${PEFT_PREFIX}${module}.lora_A.weight`, B: `${PEFT_PREFIX}${module}.lora_B.weight` };
}

/** The fields of adapter_config.json this library writes and reads (PEFT LoraConfig). */
export interface PeftLoraConfig {
  peft_type: 'LORA';
  task_type: string;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  bias: 'none';
  fan_in_fan_out: false;
  use_rslora: false;
  use_dora: false;
  inference_mode: boolean;
  init_lora_weights: boolean;
  modules_to_save: null;
  base_model_name_or_path: string | null;
  rank_pattern: Record<string, never>;
  alpha_pattern: Record<string, never>;
}

/**
 * W_eff[out, in] = W + s·(B·A): the product in the weights' precision (kernel matmul), then one add per element
 * rounded to that precision. Used by both the transform and merge(), so merged and unmerged forwards are identical.
 */
export function loraEffectiveWeight(W: FloatArray, A: FloatArray, B: FloatArray, scale: number, out: FloatArray, rows: number, cols: number, r: number): void {
  kernelsFor(out instanceof Float32Array ? 'float32' : 'float64').matmul('nn', B, A, out, rows, cols, r); // out = B·A
  for (let i = 0; i < out.length; i++) out[i] = W[i]! + scale * out[i]!;
}

/** A set of LoRA factors on the Linear modules of a base model, usable as a {@link WeightTransform}. */
export class LoraAdapter implements WeightTransform {
  /** The base weights (frozen; merge() writes W_eff into the targeted ones). */
  readonly base: ModelWeights;
  readonly r: number;
  readonly alpha: number;
  /** s = α/r. */
  readonly scale: number;
  /** Targeted module names, in the base's order. */
  readonly modules: readonly string[];
  /** A and B of every module under their PEFT names: the trainable parameters. */
  readonly params: Map<string, Tensor>;
  /** Dropout probability on the LoRA input during training (lora_dropout of adapter_config.json). */
  readonly dropout: number;
  /** Seed of the dropout masks. */
  readonly dropoutSeed: number;
  /** Index of the next training pass's mask stream (advanced by trainingGemm; save it to resume a run exactly). */
  dropoutStep = 0;
  private pending: LoraDropoutGemm | null = null;
  private readonly effective: ModelWeights;
  private merged: Map<string, FloatArray> | null = null;

  private constructor(base: ModelWeights, modules: readonly string[], r: number, alpha: number, params: Map<string, Tensor>, dropout: number, dropoutSeed = 0) {
    this.base = base;
    this.r = r;
    this.alpha = alpha;
    this.scale = alpha / r;
    this.modules = modules;
    this.params = params;
    if (!(dropout >= 0 && dropout < 1)) throw new InputError(`LoRA dropout must be in [0, 1), got ${dropout}`);
    this.dropout = dropout;
    this.dropoutSeed = dropoutSeed;
    this.effective = new Map(base);
    for (const m of modules) {
      const W = base.get(`${m}.weight`)!;
      this.effective.set(`${m}.weight`, Tensor.zeros(W.shape, W.dtype));
    }
  }

  /** A fresh adapter: A ~ U(−1/√in, 1/√in) from `seed`, B = 0 (in the base's precision). */
  static create(base: ModelWeights, opts: LoraOptions): LoraAdapter {
    const r = checkRank(opts.r, 'LoRA rank r');
    const alpha = opts.alpha ?? 8;
    if (!Number.isFinite(alpha) || alpha <= 0) throw new InputError(`LoRA alpha must be a positive number, got ${alpha}`);
    const modules = selectModules(base, opts.targets, 'LoRA targets');
    const rng = new Random(opts.seed ?? 0);
    const params = new Map<string, Tensor>();
    for (const m of modules) {
      const [out, inDim] = base.get(`${m}.weight`)!.shape as [number, number];
      const dtype = base.get(`${m}.weight`)!.dtype;
      const A = Tensor.zeros([r, inDim], dtype);
      const bound = 1 / Math.sqrt(inDim);
      for (let i = 0; i < A.size; i++) A.data[i] = (2 * rng.uniform() - 1) * bound;
      const names = loraParamNames(m);
      params.set(names.A, A);
      params.set(names.B, Tensor.zeros([out, r], dtype));
    }
    return new LoraAdapter(base, modules, r, alpha, params, opts.dropout ?? 0, opts.dropoutSeed ?? 0);
  }

  /** The factors of one targeted module. */
  factors(module: string): { A: Tensor; B: Tensor } {
    const names = loraParamNames(module);
    const A = this.params.get(names.A);
    const B = this.params.get(names.B);
    if (A === undefined || B === undefined) throw new InputError(`LoRA: module '${module}' is not targeted (targets: ${this.modules.slice(0, 5).join(', ')}${this.modules.length > 5 ? ', …' : ''})`);
    return { A, B };
  }

  /** True between merge() and unmerge(). */
  get isMerged(): boolean {
    return this.merged !== null;
  }

  /** The base weights with W + s·B·A in place of each targeted W (recomputed from the current A, B). */
  effectiveWeights(): ModelWeights {
    if (this.merged !== null) throw new InputError('LoRA: the adapter is merged into the base weights; run the base model, or unmerge() first');
    for (const m of this.modules) {
      const W = this.base.get(`${m}.weight`)!;
      const { A, B } = this.factors(m);
      const [rows, cols] = W.shape as [number, number];
      loraEffectiveWeight(W.data, A.data, B.data, this.scale, this.effective.get(`${m}.weight`)!.data, rows, cols, this.r);
    }
    return this.effective;
  }

  /** dA = s·Bᵀ·dW_eff [r, in], dB = s·dW_eff·Aᵀ [out, r] for every module, from the gradients of the effective weights. */
  backward(grads: ModelWeights): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const m of this.modules) {
      const dW = grads.get(`${m}.weight`);
      if (dW === undefined) throw new WeightsError(`LoRA backward: no gradient for '${m}.weight'`);
      const { A, B } = this.factors(m);
      const [rows, cols] = dW.shape as [number, number];
      const k = kernelsFor(dW.dtype);
      const dA = allocate(dW.dtype, this.r * cols);
      const dB = allocate(dW.dtype, rows * this.r);
      k.matmul('tn', B.data, dW.data, dA, this.r, cols, rows); // Bᵀ·dW: B is [out, r] = [K, M]
      k.matmul('nt', dW.data, A.data, dB, rows, this.r, cols); // dW·Aᵀ: A is [r, in] = [N, K]
      for (let i = 0; i < dA.length; i++) dA[i] = this.scale * dA[i]!;
      for (let i = 0; i < dB.length; i++) dB[i] = this.scale * dB[i]!;
      // plus the dropout branch's share (accumulated by the Linear sites of the last training pass)
      const br = this.pending?.branches.get(m);
      if (br !== undefined) {
        for (let i = 0; i < dA.length; i++) dA[i] = dA[i]! + br.dA[i]!;
        for (let i = 0; i < dB.length; i++) dB[i] = dB[i]! + br.dB[i]!;
      }
      const names = loraParamNames(m);
      out.set(names.A, new Tensor(A.shape, dA));
      out.set(names.B, new Tensor(B.shape, dB));
    }
    this.pending = null;
    return out;
  }

  /**
   * With dropout > 0: the Linear-site mode of the next training pass (fresh masks from (dropoutSeed, dropoutStep),
   * then dropoutStep + 1), whose accumulated dA, dB the next backward() adds. Undefined without dropout.
   */
  trainingGemm(): LoraDropoutGemm | undefined {
    if (this.dropout === 0) return undefined;
    if (this.modules.includes('lm_head')) throw new InputError("LoRA dropout: 'lm_head' is targeted, but the head runs outside the Linear sites that apply the dropout branch");
    const rng = new Random((Math.imul(this.dropoutSeed, 0x9e3779b1) ^ this.dropoutStep) >>> 0);
    this.dropoutStep++;
    const branches = new Map<string, LoraBranch>();
    for (const m of this.modules) {
      const { A, B } = this.factors(m);
      branches.set(m, { A: A.data, B: B.data, r: this.r, scale: this.scale, dA: allocate(A.dtype, A.size), dB: allocate(B.dtype, B.size) });
    }
    this.pending = { kind: 'lora-dropout', p: this.dropout, uniform: () => rng.uniform(), branches, factors: new Map() };
    return this.pending;
  }

  /**
   * Writes W + s·B·A into the base weights (in place). The original W are kept, so unmerge() restores them bit for
   * bit (subtracting s·B·A again would leave rounding residue).
   */
  merge(): void {
    if (this.merged !== null) throw new InputError('LoRA: already merged');
    const eff = this.effectiveWeights();
    this.merged = new Map();
    for (const m of this.modules) {
      const W = this.base.get(`${m}.weight`)!;
      this.merged.set(m, W.data.slice());
      W.data.set(eff.get(`${m}.weight`)!.data);
    }
  }

  /** Restores the base weights saved by merge(). */
  unmerge(): void {
    if (this.merged === null) throw new InputError('LoRA: not merged');
    for (const [m, data] of this.merged) this.base.get(`${m}.weight`)!.data.set(data);
    this.merged = null;
  }

  /** adapter_config.json of this adapter (target_modules = the exact module names, so PEFT selects the same set). */
  peftConfig(baseModel: string | null = null): PeftLoraConfig {
    return {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: this.r,
      lora_alpha: this.alpha,
      lora_dropout: this.dropout,
      target_modules: [...this.modules],
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: false,
      use_dora: false,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
      base_model_name_or_path: baseModel,
      rank_pattern: {},
      alpha_pattern: {},
    };
  }

  /** The adapter in the PEFT layout: adapter_model.safetensors bytes and adapter_config.json text. */
  toPeft(opts: { dtype?: SafetensorsFloatDType; baseModel?: string } = {}): { safetensors: Uint8Array; config: string } {
    const dtype = opts.dtype ?? (this.params.values().next().value?.dtype === 'float64' ? 'F64' : 'F32');
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, t] of this.params) tensors.set(name, fromFloatArray(t.data, t.shape, dtype));
    return {
      safetensors: serializeSafetensors(tensors, { format: 'pt' }),
      config: `${JSON.stringify(this.peftConfig(opts.baseModel ?? null), null, 2)}\n`,
    };
  }

  /**
   * An adapter from the PEFT layout over `base`: the modules are those target_modules selects among the base's
   * Linear modules (PEFT rules: a list entry matches a name equal to it or ending in `.entry`; a string is a regular
   * expression matched against the whole name; 'all-linear' = every Linear but lm_head), and the file must hold
   * exactly their lora_A [r, in] and lora_B [out, r]. Features this library does not implement are FormatErrors
   * naming the key (use_rslora, use_dora, fan_in_fan_out, bias, rank/alpha patterns, layers_to_transform, modules_to_save).
   */
  static fromPeft(
    base: ModelWeights,
    safetensors: Uint8Array,
    configText: string,
    files = { weights: 'adapter_model.safetensors', config: 'adapter_config.json' },
    opts: { dropoutSeed?: number } = {},
  ): LoraAdapter {
    const cfg = parsePeftConfig(configText, files.config);
    const modules = peftTargets(base, cfg.target_modules, files.config);
    const { tensors } = parseSafetensors(safetensors, files.weights);
    const dtype: DType = base.get('model.embed_tokens.weight')?.dtype ?? base.values().next().value?.dtype ?? 'float32';
    const params = new Map<string, Tensor>();
    for (const m of modules) {
      const [out, inDim] = base.get(`${m}.weight`)!.shape as [number, number];
      const names = loraParamNames(m);
      for (const [name, shape] of [[names.A, [cfg.r, inDim]], [names.B, [out, cfg.r]]] as const) {
        const st = tensors.get(name);
        if (st === undefined) throw new FormatError(files.weights, `missing: target_modules selects '${m}'`, name);
        if (st.shape.join(',') !== shape.join(',')) throw new FormatError(files.weights, `has shape [${st.shape.join(', ')}], expected [${shape.join(', ')}] (r = ${cfg.r})`, name);
        params.set(name, toFloatTensor(st, dtype, name));
      }
    }
    for (const name of tensors.keys()) {
      if (!params.has(name)) throw new FormatError(files.weights, `is not a lora_A/lora_B tensor of a module selected by target_modules`, name);
    }
    return new LoraAdapter(base, modules, cfg.r, cfg.lora_alpha, params, cfg.lora_dropout, opts.dropoutSeed ?? 0);
  }
}

function checkRank(r: unknown, what: string): number {
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw new InputError(`${what} must be a positive integer, got ${JSON.stringify(r)}`);
  return r;
}

/** The adapter_config.json fields the loader uses, checked. */
function parsePeftConfig(text: string, file: string): { r: number; lora_alpha: number; lora_dropout: number; target_modules: string | string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FormatError(file, 'is not JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new FormatError(file, 'is not a JSON object');
  const c = raw as Record<string, unknown>;
  const bad = (key: string, why: string): never => {
    throw new FormatError(file, `key '${key}': ${why}`);
  };
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') bad('peft_type', `expected "LORA", got ${JSON.stringify(c.peft_type)}`);
  const r = c.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) bad('r', `must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) bad('lora_alpha', `must be a positive number, got ${JSON.stringify(alpha)}`);
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad('lora_dropout', `must be in [0, 1), got ${JSON.stringify(dropout)}`);
  const tm = c.target_modules;
  const okList = Array.isArray(tm) && tm.length > 0 && tm.every((x) => typeof x === 'string');
  if (typeof tm !== 'string' && !okList) bad('target_modules', `must be a string or a non-empty list of strings, got ${JSON.stringify(tm)}`);
  for (const key of ['use_rslora', 'use_dora', 'fan_in_fan_out']) if (c[key] === true) bad(key, 'true is not supported (only plain LoRA: W + (α/r)·B·A with W [out, in])');
  if (c.bias !== undefined && c.bias !== 'none') bad('bias', `only "none" is supported, got ${JSON.stringify(c.bias)}`);
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = c[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) bad(key, 'per-module ranks or alphas are not supported');
  }
  for (const key of ['layers_to_transform', 'layers_pattern', 'modules_to_save']) {
    const v = c[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) bad(key, 'not supported');
  }
  return { r: r as number, lora_alpha: alpha as number, lora_dropout: dropout as number, target_modules: tm as string | string[] };
}

/** The base's Linear modules PEFT's target_modules selects; a selection of none is a FormatError. */
function peftTargets(base: ModelWeights, tm: string | string[], file: string): string[] {
  const modules = linearModules(base);
  let pick: (m: string) => boolean;
  if (tm === 'all-linear') pick = (m) => m !== 'lm_head';
  else if (typeof tm === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${tm})$`);
    } catch {
      throw new FormatError(file, `key 'target_modules': ${JSON.stringify(tm)} is not a regular expression this engine accepts`);
    }
    pick = (m) => re.test(m);
  } else pick = (m) => tm.some((t) => m === t || m.endsWith(`.${t}`));
  const out = modules.filter(pick);
  if (out.length === 0) throw new FormatError(file, `key 'target_modules': ${JSON.stringify(tm)} selects none of the model's Linear modules`);
  return out;
}
