/**
 * An independent float64 forward of DeepSeek-V3 written from SPEC §3 (no library model code),
 * emitting the library's trace names, with switches for three bugs real ports shipped:
 * - `groupMaskZero`: masked router groups get 0 instead of −∞ (HF, SPEC §7 pitfall 4);
 * - `biasInWeights`: the router weights use score + bias instead of the unbiased score (SPEC §7 claim 1);
 * - `ropeHalfSplit`: RoPE pairs channel i with i + R/2 (rotate-half without the permutation, SPEC §3.4).
 * Used to build deliberately broken references for `verify`. Plain RoPE only (no YaRN).
 *
 * With `{ bf16: true }` it imitates a bf16 backend (the official code under `torch.set_default_dtype(bfloat16)`):
 * weights rounded to bf16 (the router bias stays f32), and every op output rounded to bf16 (round to nearest
 * even): linears, norms, RoPE, scores, probabilities, SiLU·up, router scores and weights, residual adds, and the
 * MoE sum accumulated in expert-index order in a bf16 buffer. Its own arithmetic stays f64 between roundings, so
 * its noise is of the bf16 size but not bit-identical to any GPU.
 */
import type { ModelConfig } from '../../../src/model/config.js';
import { Tensor } from '../../../src/tensor.js';

/** The bug switches. */
export interface ReferenceBugs {
  groupMaskZero?: boolean;
  biasInWeights?: boolean;
  ropeHalfSplit?: boolean;
}

/** Options beyond the bugs. */
export interface ReferenceOptions {
  /** Round weights and every op output to bf16 (see the module comment). */
  bf16?: boolean;
}

type Emit = (name: string, shape: number[], data: Float64Array | Int32Array) => void;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x rounded to bf16, round to nearest even (via f32; NaN/±∞ kept). Written here, independent of the library. */
export function bf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7f800000) === 0x7f800000) return f32[0]!;
  u32[0] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return f32[0]!;
}

/** The active rounding: bf16 in bf16 mode, identity otherwise (module state set by referenceForward). */
let rnd: (x: number) => number = (x) => x;


function linear(x: Float64Array, N: number, W: Tensor): Float64Array {
  const [out, inn] = W.shape as [number, number];
  const y = new Float64Array(N * out);
  for (let r = 0; r < N; r++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inn; i++) s += x[r * inn + i]! * W.data[o * inn + i]!;
      y[r * out + o] = rnd(s);
    }
  }
  return y;
}

function rmsnorm(x: Float64Array, N: number, w: Tensor, eps: number): Float64Array {
  const n = w.shape[0]!;
  const y = new Float64Array(N * n);
  for (let r = 0; r < N; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = rnd(w.data[i]! * x[r * n + i]! * inv);
  }
  return y;
}

/** Rotates the R-vector at `off` by position p in place (interleaved pairs, or the buggy half split). */
function rope(v: Float64Array, off: number, R: number, p: number, theta: number, halfSplit: boolean): void {
  for (let i = 0; i < R / 2; i++) {
    const ang = p * theta ** (-(2 * i) / R);
    const [a, b] = halfSplit ? [off + i, off + i + R / 2] : [off + 2 * i, off + 2 * i + 1];
    const x0 = v[a]!;
    const x1 = v[b]!;
    v[a] = rnd(x0 * Math.cos(ang) - x1 * Math.sin(ang));
    v[b] = rnd(x0 * Math.sin(ang) + x1 * Math.cos(ang));
  }
}

function swiglu(x: Float64Array, N: number, W: Map<string, Tensor>, prefix: string): Float64Array {
  const g = linear(x, N, W.get(`${prefix}.gate_proj.weight`)!);
  const u = linear(x, N, W.get(`${prefix}.up_proj.weight`)!);
  for (let i = 0; i < g.length; i++) g[i] = rnd(rnd(g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!);
  return linear(g, N, W.get(`${prefix}.down_proj.weight`)!);
}

function attention(c: ModelConfig, W: Map<string, Tensor>, x: Float64Array, B: number, S: number, pre: string, emit: Emit, bugs: ReferenceBugs): Float64Array {
  const N = B * S;
  const H = c.numAttentionHeads;
  const n = c.qkNopeHeadDim;
  const R = c.qkRopeHeadDim;
  const V = c.vHeadDim;
  const C = c.kvLoraRank;
  const dq = n + R;
  let q: Float64Array;
  if (c.qLoraRank > 0) {
    const qa = rmsnorm(linear(x, N, W.get(`${pre}.q_a_proj.weight`)!), N, W.get(`${pre}.q_a_layernorm.weight`)!, c.rmsNormEps);
    emit(`${pre}.q_a_layernorm:out`, [B, S, c.qLoraRank], qa);
    q = linear(qa, N, W.get(`${pre}.q_b_proj.weight`)!);
  } else {
    q = linear(x, N, W.get(`${pre}.q_proj.weight`)!);
  }
  emit(`${pre}:q`, [B, S, H, dq], q.slice());
  const kva = linear(x, N, W.get(`${pre}.kv_a_proj_with_mqa.weight`)!);
  const lat = new Float64Array(N * C);
  const kpe = new Float64Array(N * R);
  for (let r = 0; r < N; r++) {
    lat.set(kva.subarray(r * (C + R), r * (C + R) + C), r * C);
    kpe.set(kva.subarray(r * (C + R) + C, (r + 1) * (C + R)), r * R);
  }
  const latN = rmsnorm(lat, N, W.get(`${pre}.kv_a_layernorm.weight`)!, c.rmsNormEps);
  const qpe = new Float64Array(N * H * R);
  for (let r = 0; r < N; r++) {
    const p = r % S;
    for (let h = 0; h < H; h++) {
      qpe.set(q.subarray((r * H + h) * dq + n, (r * H + h + 1) * dq), (r * H + h) * R);
      rope(qpe, (r * H + h) * R, R, p, c.ropeTheta, bugs.ropeHalfSplit === true);
    }
    rope(kpe, r * R, R, p, c.ropeTheta, bugs.ropeHalfSplit === true);
  }
  emit(`${pre}.kv_a_layernorm:out`, [B, S, C], latN);
  emit(`${pre}:q_pe`, [B, S, H, R], qpe);
  emit(`${pre}:k_pe`, [B, S, R], kpe);
  const kvb = linear(latN, N, W.get(`${pre}.kv_b_proj.weight`)!); // [N, H, n+V]
  emit(`${pre}.kv_b_proj:out`, [B, S, H, n + V], kvb);
  const tau = 1 / Math.sqrt(dq);
  const scores = new Float64Array(B * H * S * S);
  const probs = new Float64Array(B * H * S * S);
  const o = new Float64Array(N * H * V);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const row = ((b * H + h) * S + s) * S;
        const qi = (b * S + s) * H + h;
        for (let t = 0; t < S; t++) {
          if (t > s) {
            scores[row + t] = -Infinity; // causal mask
            continue;
          }
          const ki = (b * S + t) * H + h;
          let dot = 0;
          for (let j = 0; j < n; j++) dot += q[qi * dq + j]! * kvb[ki * (n + V) + j]!;
          for (let j = 0; j < R; j++) dot += qpe[qi * R + j]! * kpe[(b * S + t) * R + j]!;
          scores[row + t] = rnd(tau * rnd(dot));
        }
        let m = -Infinity;
        for (let t = 0; t <= s; t++) m = Math.max(m, scores[row + t]!);
        let z = 0;
        for (let t = 0; t <= s; t++) z += Math.exp(scores[row + t]! - m);
        for (let t = 0; t <= s; t++) probs[row + t] = rnd(Math.exp(scores[row + t]! - m) / z);
        for (let t = 0; t <= s; t++) {
          const ki = (b * S + t) * H + h;
          for (let j = 0; j < V; j++) o[qi * V + j]! += probs[row + t]! * kvb[ki * (n + V) + n + j]!;
        }
        for (let j = 0; j < V; j++) o[qi * V + j] = rnd(o[qi * V + j]!);
      }
    }
  }
  emit(`${pre}:attn_scores`, [B, H, S, S], scores);
  emit(`${pre}:attn_probs`, [B, H, S, S], probs);
  emit(`${pre}:o`, [B, S, H * V], o);
  const out = linear(o, N, W.get(`${pre}.o_proj.weight`)!);
  emit(`${pre}:out`, [B, S, c.hiddenSize], out);
  return out;
}

/** Indices of the k largest entries, descending, ties → lower index. */
function topk(v: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: v.length }, (_, i) => i)
    .sort((a, b) => (v[b]! > v[a]! ? 1 : v[b]! < v[a]! ? -1 : a - b))
    .slice(0, k);
}

function moe(c: ModelConfig, W: Map<string, Tensor>, x: Float64Array, N: number, pre: string, emit: Emit, bugs: ReferenceBugs): Float64Array {
  const E = c.nRoutedExperts;
  const K = c.numExpertsPerTok;
  const d = c.hiddenSize;
  const bias = W.get(`${pre}.gate.e_score_correction_bias`);
  const logits = linear(x, N, W.get(`${pre}.gate.weight`)!);
  emit(`${pre}.gate:logits`, [N, E], logits);
  const scores = new Float64Array(N * E);
  for (let t = 0; t < N; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    if (c.scoringFunc === 'sigmoid') for (let e = 0; e < E; e++) scores[t * E + e] = rnd(1 / (1 + Math.exp(-row[e]!)));
    else {
      const m = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      for (let e = 0; e < E; e++) scores[t * E + e] = Math.exp(row[e]! - m) / z; // softmax(dtype=float32) stays f32
    }
  }
  emit(`${pre}.gate:scores`, [N, E], scores);
  const indices = new Int32Array(N * K);
  const weights = new Float64Array(N * K);
  const G = c.nGroup;
  const per = E / G;
  for (let t = 0; t < N; t++) {
    const biased = Array.from({ length: E }, (_, e) => scores[t * E + e]! + (bias ? bias.data[e]! : 0));
    // group score: sum of the top-2 biased scores with a bias, else the max
    const gs = Array.from({ length: G }, (_, g) => {
      const grp = biased.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
      return bias ? grp[0]! + grp[1]! : grp[0]!;
    });
    const keep = new Set(topk(gs, c.topkGroup));
    const masked = biased.map((v, e) => (keep.has(Math.floor(e / per)) ? v : bugs.groupMaskZero ? 0 : -Infinity));
    const sel = topk(masked, K);
    const w = sel.map((e) => (bugs.biasInWeights ? biased[e]! : scores[t * E + e]!));
    const sum = rnd(w.reduce((a, b) => a + b, 0));
    sel.forEach((e, k) => {
      indices[t * K + k] = e;
      weights[t * K + k] = rnd(rnd(c.normTopkProb ? w[k]! / sum : w[k]!) * c.routedScalingFactor);
    });
  }
  emit(`${pre}.gate:indices`, [N, K], indices);
  emit(`${pre}.gate:weights`, [N, K], weights);
  const out = new Float64Array(N * d);
  for (let t = 0; t < N; t++) {
    const xt = x.slice(t * d, (t + 1) * d);
    // y += expert(x)·w in expert-index order, as the official loop over experts (a bf16 buffer in bf16 mode)
    const slots = Array.from({ length: K }, (_, k) => k).sort((p, q) => indices[t * K + p]! - indices[t * K + q]!);
    for (const k of slots) {
      const y = swiglu(xt, 1, W, `${pre}.experts.${indices[t * K + k]}`);
      for (let i = 0; i < d; i++) out[t * d + i] = rnd(out[t * d + i]! + rnd(weights[t * K + k]! * y[i]!));
    }
  }
  if (c.nSharedExperts > 0) {
    const sh = swiglu(x, N, W, `${pre}.shared_experts`);
    emit(`${pre}.shared_experts:out`, [N, d], sh);
    for (let i = 0; i < out.length; i++) out[i] = rnd(out[i]! + sh[i]!);
  }
  return out;
}

/** The weights rounded to bf16, except the f32 router bias (the official `Gate.bias` is float32). */
function bf16Weights(W: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of W) {
    out.set(name, new Tensor(t.shape, Float64Array.from(t.data, name.endsWith('e_score_correction_bias') ? Math.fround : bf16)));
  }
  return out;
}

/** Runs the reference on ids [B][S] and reports every intermediate through `emit`. */
export function referenceForward(c: ModelConfig, W0: Map<string, Tensor>, ids: number[][], emit: Emit, bugs: ReferenceBugs = {}, opts: ReferenceOptions = {}): void {
  if (c.ropeScaling !== null) throw new Error('referenceForward: plain RoPE only');
  rnd = opts.bf16 === true ? bf16 : (x) => x;
  const W = opts.bf16 === true ? bf16Weights(W0) : W0;
  const B = ids.length;
  const S = ids[0]!.length;
  const N = B * S;
  const d = c.hiddenSize;
  const emb = W.get('model.embed_tokens.weight')!;
  let h = new Float64Array(N * d);
  ids.flat().forEach((id, r) => h.set(emb.data.subarray(id * d, (id + 1) * d), r * d));
  emit('model.embed_tokens:out', [B, S, d], h.slice());
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const pre = `model.layers.${l}`;
    const a = rmsnorm(h, N, W.get(`${pre}.input_layernorm.weight`)!, c.rmsNormEps);
    emit(`${pre}.input_layernorm:out`, [B, S, d], a);
    const att = attention(c, W, a, B, S, `${pre}.self_attn`, emit, bugs);
    const h1 = h.map((v, i) => rnd(v + att[i]!));
    const f = rmsnorm(h1, N, W.get(`${pre}.post_attention_layernorm.weight`)!, c.rmsNormEps);
    emit(`${pre}.post_attention_layernorm:out`, [B, S, d], f);
    let ffn: Float64Array;
    if (l < c.firstKDenseReplace) {
      ffn = swiglu(f, N, W, `${pre}.mlp`);
      emit(`${pre}.mlp:out`, [B, S, d], ffn);
    } else {
      ffn = moe(c, W, f, N, `${pre}.mlp`, emit, bugs);
      emit(`${pre}.mlp:out`, [B, S, d], ffn); // the MoE module returns [B, S, d]
    }
    h = h1.map((v, i) => rnd(v + ffn[i]!));
    emit(`${pre}:out`, [B, S, d], h.slice());
  }
  const fin = rmsnorm(h, N, W.get('model.norm.weight')!, c.rmsNormEps);
  emit('model.norm:out', [B, S, d], fin);
  emit('lm_head:out', [B, S, c.vocabSize], linear(fin, N, W.get('lm_head.weight')!));
}
