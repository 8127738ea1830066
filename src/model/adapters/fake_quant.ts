/**
 * Weight fake quantization (docs/components/fake-quant.md): the forward runs on dequant(quant(W)), the backward
 * passes the gradient straight through (STE), or, in the clipped variant, only where W was not clipped.
 *
 * Integer schemes (INT8, INT4), one scale per output channel or per group of g consecutive inputs (along K), codes by
 * round-half-to-even, every division, product and scale rounded to the weights' precision:
 *   symmetric:  q ∈ [−Q, Q], Q = 2^(b−1) − 1;  scale = clip·max|w| / Q;  q = clamp(rne(w/scale), −Q, Q);  ŵ = q·scale
 *   asymmetric: q ∈ [0, 2^b − 1];  lo = clip·min(min w, 0), hi = clip·max(max w, 0);  scale = (hi − lo)/(2^b − 1);
 *               z = clamp(−rne(lo/scale), 0, 2^b − 1);  q = clamp(rne(w/scale) + z, 0, 2^b − 1);  ŵ = (q − z)·scale
 *   (torch's MinMax affine convention: the range contains 0, so 0 is exact). A group whose range is 0 gets scale 1.
 * Clipped STE: dW = dŴ where rne(w/scale) + z lies in the code range before the clamp, else 0 (torch's
 * fake_quantize_per_channel_affine gradient). With clip = 1 nothing is clipped and both variants agree.
 * FP8 block scheme: the checkpoint format, e4m3 codes with one f32 scale per 128×128 block (src/io/numeric.ts).
 */
import { InputError } from '../../errors.js';
import { dequantizeBlockFp8, quantizeBlockFp8 } from '../../io/numeric.js';
import { allocate, dtypeOf, Tensor, type DType, type FloatArray } from '../../tensor.js';
import type { ModelWeights } from '../weights.js';
import { selectModules, type WeightTransform } from './transform.js';

/** An integer scheme. */
export interface IntQuantScheme {
  kind: 'int8' | 'int4';
  /** Group size g along the input dimension (default: the whole row = per output channel); a row's last group may be shorter. */
  groupSize?: number;
  /** Symmetric codes around 0 (default true) or asymmetric codes with a zero point. */
  symmetric?: boolean;
  /** The scale covers clip × the group's range, 0 < clip ≤ 1 (default 1: nothing is clipped). */
  clip?: number;
}

/** The FP8 E4M3 128×128 block format of the released checkpoints. */
export interface Fp8BlockScheme {
  kind: 'fp8-block';
  /** Block edge (default 128). */
  block?: number;
}

export type QuantScheme = IntQuantScheme | Fp8BlockScheme;

/** Backward of the quantizer: straight through everywhere, or zero where the weight was clipped. */
export type SteMode = 'identity' | 'clipped';

/** Integer codes of a weight [rows, cols] with their scales and zero points per (row, group). */
export interface IntQuantized {
  bits: 4 | 8;
  symmetric: boolean;
  rows: number;
  cols: number;
  groupSize: number;
  /** Groups per row, ⌈cols / groupSize⌉. */
  groups: number;
  /** [rows, cols] codes (symmetric: −Q..Q, asymmetric: 0..2^b − 1). */
  codes: Int32Array;
  /** [rows, groups] scales, in the weight's precision. */
  scales: FloatArray;
  /** [rows, groups] zero points (0 for symmetric). */
  zeroPoints: Int32Array;
  /** [rows, cols]: 1 where the code was not clamped (the clipped STE passes the gradient there). */
  inRange: Uint8Array;
}

/** Round half to even (torch.round / nearbyint). Exact for every double. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const frac = x - f; // exact: x and f share the exponent range
  if (frac > 0.5) return f + 1;
  if (frac < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The code range [qmin, qmax] of a scheme. */
export function codeRange(bits: 4 | 8, symmetric: boolean): [number, number] {
  return symmetric ? [-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

function checkIntScheme(s: IntQuantScheme, cols: number): { bits: 4 | 8; g: number; symmetric: boolean; clip: number } {
  if (s.kind !== 'int8' && s.kind !== 'int4') throw new InputError(`fake quant: scheme kind must be 'int8', 'int4' or 'fp8-block', got ${JSON.stringify((s as { kind: unknown }).kind)}`);
  const g = s.groupSize ?? cols;
  if (!Number.isInteger(g) || g < 1) throw new InputError(`fake quant: groupSize must be a positive integer, got ${s.groupSize}`);
  const clip = s.clip ?? 1;
  if (!(clip > 0 && clip <= 1)) throw new InputError(`fake quant: clip must be in (0, 1], got ${s.clip}`);
  return { bits: s.kind === 'int8' ? 8 : 4, g: Math.min(g, cols), symmetric: s.symmetric ?? true, clip };
}

/** Quantizes w [rows, cols] (row = output channel) with an integer scheme; arithmetic in w's precision. */
export function quantizeInt(w: FloatArray, rows: number, cols: number, scheme: IntQuantScheme): IntQuantized {
  const { bits, g, symmetric, clip } = checkIntScheme(scheme, cols);
  if (w.length !== rows * cols) throw new InputError(`fake quant: weight has ${w.length} elements, expected ${rows}×${cols}`);
  const dtype = dtypeOf(w);
  const r = dtype === 'float32' ? Math.fround : (x: number): number => x;
  const [qmin, qmax] = codeRange(bits, symmetric);
  const groups = Math.ceil(cols / g);
  const codes = new Int32Array(rows * cols);
  const inRange = new Uint8Array(rows * cols);
  const scales = allocate(dtype, rows * groups);
  const zeroPoints = new Int32Array(rows * groups);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < groups; j++) {
      const c0 = i * cols + j * g;
      const c1 = i * cols + Math.min((j + 1) * g, cols);
      let lo = 0; // min(min w, 0)
      let hi = 0; // max(max w, 0)
      for (let c = c0; c < c1; c++) {
        lo = Math.min(lo, w[c]!);
        hi = Math.max(hi, w[c]!);
      }
      let scale: number;
      let zp = 0;
      if (symmetric) {
        const amax = r(clip * Math.max(-lo, hi));
        scale = amax === 0 ? 1 : r(amax / qmax);
      } else {
        const range = r(r(clip * hi) - r(clip * lo));
        scale = range === 0 ? 1 : r(range / qmax);
        zp = Math.min(qmax, Math.max(qmin, qmin - roundHalfEven(r(r(clip * lo) / scale))));
      }
      scales[i * groups + j] = scale;
      zeroPoints[i * groups + j] = zp;
      for (let c = c0; c < c1; c++) {
        const q = roundHalfEven(r(w[c]! / scale)) + zp;
        inRange[c] = q >= qmin && q <= qmax ? 1 : 0;
        codes[c] = Math.min(qmax, Math.max(qmin, q));
      }
    }
  }
  return { bits, symmetric, rows, cols, groupSize: g, groups, codes, scales, zeroPoints, inRange };
}

/** ŵ = (q − z)·scale per element, rounded to `dtype` (default: the scales' precision). */
export function dequantizeInt(q: IntQuantized, dtype: DType = dtypeOf(q.scales)): FloatArray {
  const out = allocate(dtype, q.rows * q.cols);
  for (let i = 0; i < q.rows; i++) {
    for (let c = 0; c < q.cols; c++) {
      const k = i * q.groups + Math.floor(c / q.groupSize);
      out[i * q.cols + c] = (q.codes[i * q.cols + c]! - q.zeroPoints[k]!) * q.scales[k]!;
    }
  }
  return out;
}

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
