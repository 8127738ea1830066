/**
 * The official `linear()` under a numerics profile (inference/model.py `linear`, kernel.py):
 * - a weight stored in bf16 (or a float checkpoint, rounded to bf16 as the official loader does): `F.linear`, a
 *   cuBLAS GEMM with f32 accumulation and one rounding of the output to bf16;
 * - an FP8 weight with `gemm_impl = "bf16"`: `weight_dequant` to bf16 (f32 code·scale, one rounding), then the same;
 * - an FP8 weight with `gemm_impl = "fp8"`: `act_quant` of the bf16 input per 1×128 tile, then `fp8_gemm` (exact
 *   128-wide block dot products scaled and accumulated in f32), output rounded to bf16.
 * The weights a profile needs (bf16 copies, FP8 codes) are prepared once per model and profile.
 */
import { InputError } from '../../errors.js';
import { actQuant, bf16Linear, fp8Gemm, roundBF16, weightDequant } from '../../kernels/index.js';
import type { NumericsProfile, ScaleFmt } from '../numerics.js';
import { profileGemm } from '../numerics.js';
import type { Fp8Weights, ModelWeights } from '../weights.js';

/** Weights held by a plain `Linear` in the official code (wq_a, wkv_a, the routed experts' w1/w2/w3). */
const PLAIN_LINEAR = /\.(q_a_proj|kv_a_proj_with_mqa|experts\.\d+\.(gate_proj|up_proj|down_proj))\.weight$/;

/** The weights of one model as one profile uses them, prepared lazily and kept. */
export class ProfileWeights {
  private readonly dense = new Map<string, Float32Array>();
  private readonly biases = new Map<string, Float32Array>();
  private readonly gemm: ReturnType<typeof profileGemm>;

  constructor(
    private readonly weights: ModelWeights,
    private readonly fp8: Fp8Weights,
    readonly profile: NumericsProfile,
  ) {
    this.gemm = profileGemm(profile);
    if (this.gemm.kind === 'exact') throw new InputError(`ProfileWeights: the 'exact' profile runs the model's own forward`);
  }

  /** The bf16 values of a weight: `weight_dequant` of an FP8 tensor, else the stored weight rounded to bf16. */
  bf16(name: string): Float32Array {
    const kept = this.dense.get(name);
    if (kept !== undefined) return kept;
    const q = this.fp8.get(name);
    const t = this.weights.get(name);
    if (t === undefined) throw new InputError(`numerics profile: missing tensor '${name}'`);
    const w = q !== undefined ? weightDequant(q.codes, q.scales, q.rows, q.cols, { out: 'bfloat16' }) : roundBF16(t.data);
    this.dense.set(name, w);
    return w;
  }

  /** The router bias in f32 (the official `Gate.bias` is a float32 parameter), or null when the model has none. */
  routerBias(name: string): Float32Array | null {
    const t = this.weights.get(name);
    if (t === undefined) return null;
    let b = this.biases.get(name);
    if (b === undefined) this.biases.set(name, (b = Float32Array.from(t.data)));
    return b;
  }

  /**
   * The FP8 activation scale format when `name` runs through `act_quant` + `fp8_gemm`, else null. Only the plain
   * `Linear` modules pass their `scale_fmt` on: `ColumnParallelLinear.forward` and `RowParallelLinear.forward` call
   * `linear(x, self.weight, self.bias)` without it, so wq/wq_b/wkv_b/wo and the dense and shared MLPs quantise with
   * amax/448 even under ue8m0 (measured: with ue8m0 everywhere, 5% of wq_b outputs match the GPU; with this rule 100%).
   */
  fp8Path(name: string): ScaleFmt | null {
    if (this.gemm.kind !== 'fp8' || !this.fp8.has(name)) return null;
    return PLAIN_LINEAR.test(name) ? this.gemm.scaleFmt : 'none';
  }

  /** y[rows, out] = linear(x[rows, in], W) as the official code computes it under this profile (bf16 values). */
  linear(x: Float32Array, name: string, rows: number): Float32Array {
    const fmt = this.fp8Path(name);
    if (fmt !== null) {
      const q = this.fp8.get(name)!;
      if (q.cols % 128 !== 0) {
        throw new InputError(`numerics ${this.profile}: act_quant needs the input width of '${name}' (${q.cols}) to be a multiple of 128`);
      }
      const a = actQuant(x, rows, q.cols, { scaleFmt: fmt });
      return fp8Gemm(a.codes, a.scales, q.codes, q.scales, rows, q.rows, q.cols, { out: 'bfloat16' });
    }
    const [outDim, inDim] = this.weights.get(name)!.shape as [number, number];
    return bf16Linear(x, this.bf16(name), rows, outDim, inDim); // f32 accumulation, one rounding of the output
  }
}
