/**
 * Integer quantization of a matrix [rows, cols] by row groups (docs/components/fake-quant.md): INT8 or INT4, one
 * scale per row or per group of g consecutive columns, symmetric or asymmetric, round-half-to-even, every division,
 * product and scale rounded to the matrix's precision. Rows are output channels for a weight (fake_quant.ts) and
 * tokens for an activation (the Linear op's per-token activation fake quantization).
 *   symmetric:  q ∈ [−Q, Q], Q = 2^(b−1) − 1;  scale = clip·max|w| / Q;  q = clamp(rne(w/scale), −Q, Q);  ŵ = q·scale
 *   asymmetric: q ∈ [0, 2^b − 1];  lo = clip·min(min w, 0), hi = clip·max(max w, 0);  scale = (hi − lo)/(2^b − 1);
 *               z = clamp(−rne(lo/scale), 0, 2^b − 1);  q = clamp(rne(w/scale) + z, 0, 2^b − 1);  ŵ = (q − z)·scale
 * A group whose range is 0 gets scale 1.
 */
import { InputError } from '../errors.js';
import { allocate, dtypeOf, type DType, type FloatArray } from '../tensor.js';

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

