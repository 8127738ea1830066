/**
 * Weight transforms: the model runs on effective weights W_eff = f(θ) materialised from trainable parameters θ
 * (LoRA: W + (α/r)·B·A; fake quantization: dequant(quant(W))), and the ordinary backward's dL/dW_eff is mapped
 * back to dL/dθ by the transform's own chain rule. No model op changes: the effective weights are plain tensors
 * under the HF names.
 */
import { InputError } from '../../errors.js';
import type { Tensor } from '../../tensor.js';
import type { ModelConfig } from '../config.js';
import type { GenerateOptions, GenerateResult } from '../generate.js';
import { DeepSeekV3, type DeepSeekV3Options, type LossAndGradsResult, type LossOptions, type ModelForwardOptions, type ModelForwardResult, type TokenBatch, type TokenInput } from '../model.js';
import type { LinearGemm } from '../../ops/linear.js';
import type { ModelWeights } from '../weights.js';

export { linearModules, selectModules } from './glob.js';

/** Maps trainable parameters to the weights the model runs on, and gradients back. */
export interface WeightTransform {
  /** The trainable tensors by name (what an optimizer sees; updated in place by it). */
  readonly params: Map<string, Tensor>;
  /**
   * Every weight of the model under its HF name: the transformed ones recomputed from the current `params`, the
   * others the base tensors themselves (shared, not copied).
   */
  effectiveWeights(): ModelWeights;
  /**
   * dL/dθ for every entry of `params`, from dL/dW for every weight (the model's gradients of the effective weights)
   * and from what the last {@link trainingGemm} accumulated.
   */
  backward(grads: ModelWeights): Map<string, Tensor>;
  /** A Linear-site mode the next training pass must run with (LoRA dropout), or undefined. */
  trainingGemm?(): LinearGemm | undefined;
}

/**
 * A model whose weights come from a {@link WeightTransform}: forward, generate and the training objective run a
 * `DeepSeekV3` over the current effective weights; `lossAndGrads` returns gradients of the transform's parameters
 * only. `weights` is the parameter map, so a `Trainer` over this model gives optimizer state to those parameters
 * only. Router-bias loads are reported only for biases among the parameters (a frozen base keeps its biases).
 */
export class TransformedModel {
  readonly config: ModelConfig;
  readonly transform: WeightTransform;
  /** The trainable parameters (= `transform.params`). */
  readonly weights: Map<string, Tensor>;
  private readonly opts: Omit<DeepSeekV3Options, 'fp8'>;

  constructor(config: ModelConfig, transform: WeightTransform, opts: Omit<DeepSeekV3Options, 'fp8'> = {}) {
    this.config = config;
    this.transform = transform;
    this.weights = transform.params;
    this.opts = opts;
    this.model(); // checks the effective weights against the config now, not at the first call
  }

  /**
   * A `DeepSeekV3` over the effective weights of the current parameters (built per call: an optimizer changes the
   * parameters in place between calls).
   */
  model(): DeepSeekV3 {
    return new DeepSeekV3(this.config, this.transform.effectiveWeights(), this.opts);
  }

  forward(ids: TokenInput, opts: ModelForwardOptions = {}): ModelForwardResult {
    return this.model().forward(ids, opts);
  }

  generate(prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
    return this.model().generate(prompt, opts);
  }

  /** The objective of the effective model; `grads` holds dL/dθ under the parameter names. */
  lossAndGrads(batch: TokenBatch | readonly (readonly number[])[], opts: LossOptions = {}): LossAndGradsResult {
    const model = this.model();
    const gemm = this.transform.trainingGemm?.();
    if (gemm !== undefined && (opts.attn ?? 'naive') !== 'naive') {
      throw new InputError(`lossAndGrads: this transform (${gemm.kind}) needs attn 'naive' (the absorbed path folds kv_b_proj into the attention core)`);
    }
    const r = model.lossAndGrads(batch, gemm !== undefined ? { ...opts, linearGemm: gemm } : opts);
    return { ...r, grads: this.transform.backward(r.grads), loads: r.loads.filter((l) => this.weights.has(l.biasName)) };
  }
}
