/**
 * RoPE as the official code computes it (model.py `precompute_freqs_cis`, `apply_rotary_emb`): frequencies, angles
 * and cos/sin in f32; the rotation of a bf16 vector in f32 (`x.float()` times the complex64 table), rounded back
 * to bf16 (`y.to(dtype)`).
 */
import type { ModelConfig } from '../config.js';
import { yarnCorrectionRange } from '../rope.js';
import { bf16 } from './arith.js';

const fr = Math.fround;

/** cos/sin [positions, R/2] in f32 with θ = f32(p · ω_f32). */
export interface RopeTablesF32 {
  cos: Float32Array;
  sin: Float32Array;
  positions: number;
  half: number;
}

/** ω in f32, op by op: 1 / base^(arange(0, R, 2)/R); with YaRN ω/s·(1 − smooth) + ω·smooth, smooth = 1 − ramp. */
export function ropeFrequenciesF32(config: ModelConfig): Float32Array {
  const R = config.qkRopeHeadDim;
  const half = R / 2;
  const base = config.ropeTheta;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = fr(1 / fr(Math.pow(base, fr((2 * i) / R))));
  const yarn = config.ropeScaling;
  if (yarn === null) return freqs;
  const { low, high } = yarnCorrectionRange(R, base, yarn);
  const hi = low === high ? high + 0.001 : high;
  const s = yarn.factor;
  for (let j = 0; j < half; j++) {
    const ramp = Math.min(Math.max(fr(fr(j - low) / fr(hi - low)), 0), 1);
    const smooth = fr(1 - ramp);
    freqs[j] = fr(fr(fr(freqs[j]! / s) * fr(1 - smooth)) + fr(freqs[j]! * smooth));
  }
  return freqs;
}

/** The f32 tables for positions [0, positions). */
export function ropeTablesF32(config: ModelConfig, positions: number): RopeTablesF32 {
  const freqs = ropeFrequenciesF32(config);
  const half = freqs.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const theta = fr(p * freqs[i]!);
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
    }
  }
  return { cos, sin, positions, half };
}

/**
 * Rotates the interleaved pairs of x[off, off + 2·half) in place at position p:
 * (a + ib)(c + is) = (ac − bs) + i(as + bc) in f32, each result rounded to bf16.
 */
export function rotateBF16(x: Float32Array, off: number, t: RopeTablesF32, p: number): void {
  const o = p * t.half;
  for (let i = 0; i < t.half; i++) {
    const a = x[off + 2 * i]!;
    const b = x[off + 2 * i + 1]!;
    const c = t.cos[o + i]!;
    const s = t.sin[o + i]!;
    x[off + 2 * i] = bf16(fr(a * c - b * s));
    x[off + 2 * i + 1] = bf16(fr(a * s + b * c));
  }
}
