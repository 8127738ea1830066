/**
 * MLA under a numerics profile: the official `MLA.forward` (inference/model.py) with bf16 tensors, both paths.
 *
 *   q = wq_b(q_norm(wq_a(x)))            bf16 linears, bf16 RMSNorm
 *   q_pe, k_pe = apply_rotary_emb(·)     f32 rotation, rounded to bf16
 *   naive:  kv = wkv_b(kv_norm(kv));  scores = bf16(einsum(q, k)) then bf16(· × scale)
 *   absorb: q̃ = bf16(einsum(q_nope, W_UK));  scores = bf16(bf16(q̃·ĉ) + bf16(q_pe·k_pe)) then bf16(· × scale)
 *   probs  = softmax(scores + mask, dtype=f32).type_as(x)   (bf16)
 *   naive:  o = bf16(probs·v);  absorb: o = bf16(bf16(probs·ĉ)·W_UVᵀ)
 *   out = wo(o)
 *
 * Each einsum is a GEMM with f32 accumulation and one rounding (emulated as an f64 dot product rounded to f32,
 * then to bf16). The caches hold bf16 values (the official buffers are created in the default dtype); the same
 * cache classes as the exact path are used, in f32 storage. Trace names and shapes are those of the exact path.
 */
import { InputError } from '../../errors.js';
import type { AttnImpl } from '../attention.js';
import type { ModelConfig } from '../config.js';
import type { MLACache } from '../kv_cache.js';
import { softmaxScale } from '../rope.js';
import type { TraceFn } from '../trace.js';
import { bf16, rmsnormBF16, softmaxF32 } from './arith.js';
import type { ProfileWeights } from './linear.js';
import { rotateBF16, type RopeTablesF32 } from './rope.js';

/** Options of {@link mlaProfile}. */
export interface MLAProfileOptions {
  startPos: number;
  rope: RopeTablesF32;
  attn: AttnImpl;
  cache?: MLACache;
  trace?: TraceFn;
  /** Module path, e.g. `model.layers.0.self_attn`. */
  prefix: string;
}

/** f32-accumulated dot product of a[ao + i·as] and b[bo + i·bs], i < n, rounded to bf16. */
function dotBF16(a: Float32Array, ao: number, as: number, b: Float32Array, bo: number, bs: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i * as]! * b[bo + i * bs]!;
  return bf16(Math.fround(s));
}

/** MLA forward on bf16 x [B, S, d] → [B, S, d] (bf16 values). */
export function mlaProfile(config: ModelConfig, pw: ProfileWeights, x: Float32Array, B: number, S: number, opts: MLAProfileOptions): Float32Array {
  const { hiddenSize: d, numAttentionHeads: H, qkNopeHeadDim: n, qkRopeHeadDim: R, vHeadDim: V, kvLoraRank: C, qLoraRank: qr } = config;
  const qk = n + R;
  const N = B * S;
  const { startPos, rope, attn, cache, trace, prefix } = opts;
  const eps = config.rmsNormEps;
  const w = (name: string): string => `${prefix}.${name}.weight`;
  if (startPos + S > rope.positions) throw new InputError(`numerics profile: position ${startPos + S - 1} is beyond the RoPE tables (${rope.positions} positions)`);
  if (cache !== undefined && (cache.attn !== attn || cache.dtype !== 'float32')) {
    throw new InputError(`numerics profile: the ${cache.attn} ${cache.dtype} cache does not fit the ${attn} path (profiles need float32 caches: createCaches(attn, B, len, { numerics }))`);
  }

  // ---- queries: q [N, H, qk]
  let q: Float32Array;
  if (qr > 0) {
    const cq = pw.linear(x, w('q_a_proj'), N);
    const cqn = rmsnormBF16(cq, pw.bf16(w('q_a_layernorm')), N, qr, eps);
    trace?.(`${prefix}.q_a_layernorm:out`, [B, S, qr], cqn);
    q = pw.linear(cqn, w('q_b_proj'), N);
  } else {
    q = pw.linear(x, w('q_proj'), N);
  }
  trace?.(`${prefix}:q`, [B, S, H, qk], q);
  // q_pe = apply_rotary_emb(q[..., n:]) in place (q keeps [q_nope | q_pe] per head, as torch.cat rebuilds it)
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      for (let h = 0; h < H; h++) rotateBF16(q, ((b * S + s) * H + h) * qk + n, rope, startPos + s);
    }
  }
  if (trace) {
    const qPe = new Float32Array(N * H * R);
    for (let r = 0; r < N * H; r++) qPe.set(q.subarray(r * qk + n, (r + 1) * qk), r * R);
    trace(`${prefix}:q_pe`, [B, S, H, R], qPe);
  }

  // ---- keys: [c | k_pe] = wkv_a(x); ĉ = kv_norm(c); k_pe rotated
  const kva = pw.linear(x, w('kv_a_proj_with_mqa'), N);
  const latent = new Float32Array(N * C);
  const kPe = new Float32Array(N * R);
  for (let t = 0; t < N; t++) {
    latent.set(kva.subarray(t * (C + R), t * (C + R) + C), t * C);
    kPe.set(kva.subarray(t * (C + R) + C, (t + 1) * (C + R)), t * R);
  }
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) rotateBF16(kPe, (b * S + s) * R, rope, startPos + s);
  const cHat = rmsnormBF16(latent, pw.bf16(w('kv_a_layernorm')), N, C, eps);
  trace?.(`${prefix}.kv_a_layernorm:out`, [B, S, C], cHat);
  trace?.(`${prefix}:k_pe`, [B, S, R], kPe);

  // key positions: with a cache [0, startPos + S), else the S new tokens at startPos..
  if (cache) cache.reserve(startPos, S, B);
  const T = cache ? startPos + S : S;
  const keyPos0 = cache ? 0 : startPos;
  const scale = Math.fround(softmaxScale(config));
  const scores = new Float32Array(B * H * S * T); // [B, H, S, T]
  const o = new Float32Array(N * H * V); // [B, S, H, V]

  if (attn === 'naive') {
    const kv = pw.linear(cHat, w('kv_b_proj'), N); // [N, H, n+V]
    trace?.(`${prefix}.kv_b_proj:out`, [B, S, H, n + V], kv);
    // keys k[b, t, h] = [k_nope | k_pe] and values, in the head-major cache layout [B, H, Tcap, ·]
    const Tcap = cache ? cache.maxLen : S;
    const K = cache && cache.attn === 'naive' ? (cache.k as Float32Array) : new Float32Array(B * H * Tcap * qk);
    const Vc = cache && cache.attn === 'naive' ? (cache.v as Float32Array) : new Float32Array(B * H * Tcap * V);
    const t0 = cache ? startPos : 0;
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        for (let h = 0; h < H; h++) {
          const src = ((b * S + s) * H + h) * (n + V);
          const kr = ((b * H + h) * Tcap + t0 + s) * qk;
          K.set(kv.subarray(src, src + n), kr);
          K.set(kPe.subarray((b * S + s) * R, (b * S + s + 1) * R), kr + n);
          Vc.set(kv.subarray(src + n, src + n + V), ((b * H + h) * Tcap + t0 + s) * V);
        }
      }
    }
    // scores[b,h,s,t] = bf16(q·k) over the qk = n + R dims
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let s = 0; s < S; s++) {
          const qo = ((b * S + s) * H + h) * qk;
          const so = ((b * H + h) * S + s) * T;
          for (let t = 0; t < T; t++) scores[so + t] = dotBF16(q, qo, 1, K, ((b * H + h) * Tcap + t) * qk, 1, qk);
        }
      }
    }
    const P = scaleMaskSoftmax(scores, B * H, S, T, scale, startPos - keyPos0, prefix, trace, [B, H, S, T]);
    // o[b,s,h] = bf16(P·v)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let s = 0; s < S; s++) {
          const po = ((b * H + h) * S + s) * T;
          const oo = ((b * S + s) * H + h) * V;
          for (let j = 0; j < V; j++) o[oo + j] = dotBF16(P, po, 1, Vc, (b * H + h) * Tcap * V + j, V, T);
        }
      }
    }
  } else {
    // absorbed: W_kvb [H, n+V, C] in bf16 (weight_dequant of an FP8 weight); W_UK = rows 0..n−1, W_UV = rows n..
    const Wkvb = pw.bf16(w('kv_b_proj'));
    const Tcap = cache ? cache.maxLen : S;
    const lat = cache && cache.attn === 'absorb' ? (cache.latent as Float32Array) : new Float32Array(B * Tcap * C);
    const pe = cache && cache.attn === 'absorb' ? (cache.kPe as Float32Array) : new Float32Array(B * Tcap * R);
    const t0 = cache ? startPos : 0;
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        lat.set(cHat.subarray((b * S + s) * C, (b * S + s + 1) * C), (b * Tcap + t0 + s) * C);
        pe.set(kPe.subarray((b * S + s) * R, (b * S + s + 1) * R), (b * Tcap + t0 + s) * R);
      }
    }
    // q̃[b,s,h,c] = bf16(Σ_j q_nope[j]·W_UK[h,j,c])
    const qAbs = new Float32Array(N * H * C);
    for (let r = 0; r < N; r++) {
      for (let h = 0; h < H; h++) {
        const qo = (r * H + h) * qk;
        for (let c = 0; c < C; c++) qAbs[(r * H + h) * C + c] = dotBF16(q, qo, 1, Wkvb, h * (n + V) * C + c, C, n);
      }
    }
    // scores = bf16(bf16(q̃·ĉ) + bf16(q_pe·k_pe))
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let s = 0; s < S; s++) {
          const r = b * S + s;
          const so = ((b * H + h) * S + s) * T;
          for (let t = 0; t < T; t++) {
            const a1 = dotBF16(qAbs, (r * H + h) * C, 1, lat, (b * Tcap + t) * C, 1, C);
            const a2 = dotBF16(q, (r * H + h) * qk + n, 1, pe, (b * Tcap + t) * R, 1, R);
            scores[so + t] = bf16(Math.fround(a1 + a2));
          }
        }
      }
    }
    const P = scaleMaskSoftmax(scores, B * H, S, T, scale, startPos - keyPos0, prefix, trace, [B, H, S, T]);
    // õ = bf16(P·ĉ); o = bf16(õ·W_UVᵀ)
    const oLat = new Float32Array(C);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let s = 0; s < S; s++) {
          const po = ((b * H + h) * S + s) * T;
          for (let c = 0; c < C; c++) oLat[c] = dotBF16(P, po, 1, lat, b * Tcap * C + c, C, T);
          const oo = ((b * S + s) * H + h) * V;
          for (let j = 0; j < V; j++) o[oo + j] = dotBF16(oLat, 0, 1, Wkvb, (h * (n + V) + n + j) * C, 1, C);
        }
      }
    }
  }

  trace?.(`${prefix}:o`, [B, S, H * V], o);
  const out = pw.linear(o, w('o_proj'), N);
  trace?.(`${prefix}:out`, [B, S, d], out);
  return out;
}

/**
 * scores ← bf16(scores × scale) (a bf16 tensor times a Python float: f32 multiply, one rounding), then the causal
 * mask (−∞ where key t sits after query s: t > s + offset), traced; returns softmax(·, f32).type_as(x) (bf16).
 */
function scaleMaskSoftmax(
  scores: Float32Array,
  groups: number,
  S: number,
  T: number,
  scale: number,
  offset: number,
  prefix: string,
  trace: TraceFn | undefined,
  shape: number[],
): Float32Array {
  for (let g = 0; g < groups; g++) {
    for (let s = 0; s < S; s++) {
      const o = (g * S + s) * T;
      for (let t = 0; t < T; t++) scores[o + t] = t > s + offset ? -Infinity : bf16(Math.fround(scores[o + t]! * scale));
    }
  }
  trace?.(`${prefix}:attn_scores`, shape, scores);
  const P = softmaxF32(scores, groups * S, T);
  for (let i = 0; i < P.length; i++) P[i] = bf16(P[i]!);
  trace?.(`${prefix}:attn_probs`, shape, P);
  return P;
}
