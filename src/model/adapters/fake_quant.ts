/**
 * Weight fake quantization (docs/components/fake-quant.md): the forward runs on dequant(quant(W)), the backward
 * passes the gradient straight through (STE), or, in the clipped variant, only where W was not clipped.
 *
 * Integer schemes (INT8, INT4; src/ops/int_quant.ts), one scale per output channel or per group of g consecutive
 * inputs (along K), symmetric or asymmetric, round-half-to-even, in the weights' precision.
 * Clipped STE: dW = dŴ where rne(w/scale) + z lies in the code range before the clamp, else 0 (torch's
 * fake_quantize_per_channel_affine gradient). With clip = 1 nothing is clipped and both variants agree.
 * FP8 block scheme: the checkpoint format, e4m3 codes with one f32 scale per 128×128 block (src/io/numeric.ts).
 */
import { InputError } from '../../errors.js';
import { dequantizeBlockFp8, quantizeBlockFp8 } from '../../io/numeric.js';
import { dequantizeInt, quantizeInt, type IntQuantScheme } from '../../ops/int_quant.js';
import { Tensor } from '../../tensor.js';
import type { ModelWeights } from '../weights.js';
import { selectModules } from './glob.js';
import type { WeightTransform } from './transform.js';

/** The FP8 E4M3 128×128 block format of the released checkpoints. */
export interface Fp8BlockScheme {
  kind: 'fp8-block';
  /** Block edge (default 128). */
  block?: number;
}

export type QuantScheme = IntQuantScheme | Fp8BlockScheme;

/** Backward of the quantizer: straight through everywhere, or zero where the weight was clipped. */
export type SteMode = 'identity' | 'clipped';

/**
 * dequant(quant(W)) of a 2-D weight, and where the clipped STE passes the gradient (null: everywhere, as for the
 * fp8-block scheme, whose scale comes from the block's max, so nothing is clipped).
 */
export function fakeQuantize(W: Tensor, scheme: QuantScheme): { value: Tensor; pass: Uint8Array | null } {
  if (W.shape.length !== 2) throw new InputError(`fake quant: weights must be 2-D, got shape [${W.shape.join(', ')}]`);
  const [rows, cols] = W.shape as [number, number];
  if (scheme.kind === 'fp8-block') {
    const block = scheme.block ?? 128;
    if (!Number.isInteger(block) || block < 1) throw new InputError(`fake quant: fp8-block block must be a positive integer, got ${scheme.block}`);
    const { q, scaleInv } = quantizeBlockFp8(W.data, rows, cols, block);
    return { value: new Tensor(W.shape, dequantizeBlockFp8(q, scaleInv, rows, cols, block, W.dtype)), pass: null };
  }
  const q = quantizeInt(W.data, rows, cols, scheme);
  return { value: new Tensor(W.shape, dequantizeInt(q)), pass: q.inRange.every((v) => v === 1) ? null : q.inRange };
}

/** One fake-quant rule: the Linear modules matched by `targets` (globs over HF names without `.weight`). */
export interface FakeQuantRule {
  targets: string | readonly string[];
  scheme: QuantScheme;
  /** Backward (default 'identity'). */
  ste?: SteMode;
}

/** Module → its rule; a module matched by two rules is an InputError. */
function assignRules(base: ModelWeights, rules: readonly FakeQuantRule[]): Map<string, FakeQuantRule> {
  if (rules.length === 0) throw new InputError('fake quant: no rules given');
  const byModule = new Map<string, FakeQuantRule>();
  rules.forEach((rule, i) => {
    if (rule.ste !== undefined && rule.ste !== 'identity' && rule.ste !== 'clipped') throw new InputError(`fake quant rule ${i}: ste must be 'identity' or 'clipped', got ${JSON.stringify(rule.ste)}`);
    for (const m of selectModules(base, rule.targets, `fake quant rule ${i} targets`)) {
      if (byModule.has(m)) throw new InputError(`fake quant: module '${m}' is matched by rule ${rules.indexOf(byModule.get(m)!)} and rule ${i}`);
      byModule.set(m, rule);
    }
  });
  return byModule;
}

/**
 * A copy of the weights map with every targeted weight replaced by dequant(quant(W)) (fresh tensors; the others
 * shared): a quantized model for inference, or the frozen base of a LoRA adapter (QLoRA).
 */
export function fakeQuantizeWeights(base: ModelWeights, rules: readonly FakeQuantRule[]): ModelWeights {
  const out = new Map(base);
  for (const [m, rule] of assignRules(base, rules)) out.set(`${m}.weight`, fakeQuantize(base.get(`${m}.weight`)!, rule.scheme).value);
  return out;
}

/**
 * Quantization-aware training as a {@link WeightTransform}: every base tensor is a parameter (the latent
 * full-precision weights); the model runs on the fake-quantized targets; dW = dŴ (STE), masked for 'clipped'.
 */
export class FakeQuantTransform implements WeightTransform {
  /** The base weights: all trainable (AdamW's own rules still skip the router biases). */
  readonly params: Map<string, Tensor>;
  private readonly rules: Map<string, FakeQuantRule>;
  private readonly effective: ModelWeights;
  private readonly masks = new Map<string, Uint8Array>();

  constructor(base: ModelWeights, rules: readonly FakeQuantRule[]) {
    this.params = base;
    this.rules = assignRules(base, rules);
    this.effective = new Map(base);
  }

  /** Targeted module names. */
  get modules(): string[] {
    return [...this.rules.keys()];
  }

  effectiveWeights(): ModelWeights {
    this.masks.clear();
    for (const [m, rule] of this.rules) {
      const { value, pass } = fakeQuantize(this.params.get(`${m}.weight`)!, rule.scheme);
      this.effective.set(`${m}.weight`, value);
      if ((rule.ste ?? 'identity') === 'clipped' && pass !== null) this.masks.set(`${m}.weight`, pass);
    }
    return this.effective;
  }

  /** STE: the gradient of Ŵ is the gradient of W, zeroed where clipped under 'clipped'; other tensors pass through. */
  backward(grads: ModelWeights): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of this.params.keys()) {
      const g = grads.get(name);
      if (g === undefined) throw new InputError(`fake quant backward: no gradient for '${name}'`);
      const mask = this.masks.get(name);
      if (mask === undefined) {
        out.set(name, g);
        continue;
      }
      const masked = g.clone();
      for (let i = 0; i < mask.length; i++) if (mask[i] === 0) masked.data[i] = 0;
      out.set(name, masked);
    }
    return out;
  }
}
