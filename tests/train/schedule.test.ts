import { describe, expect, it } from 'vitest';
import {
  DEEPSEEK_V3_BATCH_RAMP,
  DEEPSEEK_V3_BIAS_GAMMA,
  DEEPSEEK_V3_LR_SCHEDULE,
  DEEPSEEK_V3_MTP_LAMBDA,
  batchSizeAt,
  learningRate,
  stepValue,
  warmupCosineSchedule,
} from '../../src/train/schedule.js';

// Expected values derived by hand from SPEC §5.7 / §4.2 / §5.2 numbers, not from the code.
const T = 1e12;
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('V3 learning-rate schedule (SPEC §5.7)', () => {
  const lr = (step: number, tokens: number): number => learningRate(DEEPSEEK_V3_LR_SCHEDULE, step, tokens);
  it('warmup: peak·t/2000 for the t-th update, then the peak', () => {
    expect(rel(lr(1, 0), 1.1e-7)).toBeLessThan(1e-12); // 2.2e-4/2000
    expect(rel(lr(1000, 1e9), 1.1e-4)).toBeLessThan(1e-12);
    expect(lr(2000, 5e9)).toBe(2.2e-4);
    expect(lr(2001, 5e9)).toBe(2.2e-4);
  });
  it('constant 2.2e-4 until 10 T tokens, cosine to 2.2e-5 over 4.3 T (midpoint = mean)', () => {
    expect(lr(1e6, 10 * T - 1)).toBe(2.2e-4);
    expect(rel(lr(1e6, 10 * T), 2.2e-4)).toBeLessThan(1e-15);
    expect(rel(lr(1e6, 12.15 * T), (2.2e-4 + 2.2e-5) / 2)).toBeLessThan(1e-12);
    // τ = 1/3: cos(π/3) = 1/2 ⇒ η = min + ¾(max − min) = 2.2e-5 + 0.75·1.98e-4 = 1.705e-4
    expect(rel(lr(1e6, (10 + 4.3 / 3) * T), 1.705e-4)).toBeLessThan(1e-12);
    expect(rel(lr(1e6, 14.3 * T), 2.2e-5)).toBeLessThan(1e-12);
  });
  it('2.2e-5 for the next 333 B tokens, then 7.3e-6 to the end (14.8 T)', () => {
    expect(rel(lr(1e6, 14.5 * T), 2.2e-5)).toBeLessThan(1e-12);
    expect(rel(lr(1e6, 14.633 * T - 1e6), 2.2e-5)).toBeLessThan(1e-12);
    expect(lr(1e6, 14.633 * T)).toBe(7.3e-6);
    expect(lr(1e6, 14.8 * T)).toBe(7.3e-6);
  });
  it('rejects a 0-based or fractional step', () => {
    expect(() => lr(0, 0)).toThrow(/1-based/);
    expect(() => lr(1.5, 0)).toThrow(/1-based/);
  });
});

describe('plain warmup + cosine preset (warmup 2000, peak 3e-4, hold 10,000, to 3e-5)', () => {
  const s = warmupCosineSchedule(20_000);
  const lr = (step: number): number => learningRate(s, step, 0);
  it('has the stated values at the phase boundaries', () => {
    expect(rel(lr(1), 1.5e-7)).toBeLessThan(1e-12);
    expect(lr(2000)).toBe(3e-4);
    expect(lr(12_000)).toBe(3e-4);
    expect(rel(lr(22_000), (3e-4 + 3e-5) / 2)).toBeLessThan(1e-12); // halfway through the decay
    expect(rel(lr(32_000), 3e-5)).toBeLessThan(1e-12);
    expect(rel(lr(100_000), 3e-5)).toBeLessThan(1e-12);
    expect(lr(12_001)).toBeLessThan(3e-4);
  });
});

describe('MTP λ, bias γ and batch ramp', () => {
  it('λ = 0.3 for the first 10 T tokens, then 0.1 (SPEC §4.2)', () => {
    expect(stepValue(DEEPSEEK_V3_MTP_LAMBDA, 0)).toBe(0.3);
    expect(stepValue(DEEPSEEK_V3_MTP_LAMBDA, 10 * T - 1)).toBe(0.3);
    expect(stepValue(DEEPSEEK_V3_MTP_LAMBDA, 10 * T)).toBe(0.1);
  });
  it('γ = 0.001 for the first 14.3 T tokens, then 0 (SPEC §5.2)', () => {
    expect(stepValue(DEEPSEEK_V3_BIAS_GAMMA, 14.3 * T - 1)).toBe(0.001);
    expect(stepValue(DEEPSEEK_V3_BIAS_GAMMA, 14.3 * T)).toBe(0);
  });
  it('batch 3072 → 15360 linearly over 469 B tokens, then constant', () => {
    expect(batchSizeAt(DEEPSEEK_V3_BATCH_RAMP, 0)).toBe(3072);
    expect(batchSizeAt(DEEPSEEK_V3_BATCH_RAMP, 234.5e9)).toBe(9216); // (3072 + 15360)/2
    expect(batchSizeAt(DEEPSEEK_V3_BATCH_RAMP, 469e9)).toBe(15360);
    expect(batchSizeAt(DEEPSEEK_V3_BATCH_RAMP, 5 * T)).toBe(15360);
    expect(batchSizeAt([[0, 2], [100, 4], [200, 4]], 150)).toBe(4);
    expect(() => batchSizeAt([], 0)).toThrow(/knot/);
  });
});
