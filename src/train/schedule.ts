/**
 * Training schedules (SPEC §5.7, §4.2, §5.2): pure functions of the 1-based index `step` of the
 * update about to run and the number of tokens consumed before it.
 */
import { InputError } from '../errors.js';

/** The paper's lr schedule: warmup by steps, then phases by consumed tokens (SPEC §5.7). */
export interface PaperLrSchedule {
  kind: 'paper';
  /** Peak lr η_max. */
  peak: number;
  /** Warmup updates: η = peak·min(1, t/warmupSteps) for the t-th update. */
  warmupSteps: number;
  /** End of the constant phase = start of the cosine decay, in tokens. */
  decayStartTokens: number;
  /** Length of the cosine decay, in tokens. */
  decayTokens: number;
  /** lr at the end of the decay (held afterwards). */
  min: number;
  /** Later constant phases: from `fromTokens` on, lr = `lr` (ascending `fromTokens`, after the decay). */
  tail: { fromTokens: number; lr: number }[];
}

/** Plain warmup → hold → cosine → constant, all in steps. */
export interface CosineLrSchedule {
  kind: 'cosine';
  peak: number;
  warmupSteps: number;
  /** Updates held at peak after the warmup. */
  holdSteps: number;
  /** Updates of the cosine from peak to min (then min forever). */
  decaySteps: number;
  min: number;
}

/** A learning-rate schedule description. */
export type LrSchedule = PaperLrSchedule | CosineLrSchedule;

/**
 * DeepSeek-V3 pre-training (SPEC §5.7): 2000 warmup steps to 2.2e-4, constant to 10 T tokens,
 * cosine to 2.2e-5 over 4.3 T, 2.2e-5 for 333 B tokens, 7.3e-6 for the final 167 B (14.8 T total).
 */
export const DEEPSEEK_V3_LR_SCHEDULE: PaperLrSchedule = {
  kind: 'paper',
  peak: 2.2e-4,
  warmupSteps: 2000,
  decayStartTokens: 10e12,
  decayTokens: 4.3e12,
  min: 2.2e-5,
  tail: [{ fromTokens: 10e12 + 4.3e12 + 333e9, lr: 7.3e-6 }],
};

/** The plain warmup+cosine preset: warmup 2000, peak 3e-4, hold 10,000, cosine over `decaySteps` to 3e-5. */
export function warmupCosineSchedule(decaySteps: number): CosineLrSchedule {
  return { kind: 'cosine', peak: 3e-4, warmupSteps: 2000, holdSteps: 10_000, decaySteps, min: 3e-5 };
}

/** η = η_min + ½(η_max − η_min)(1 + cos(π·τ)), τ clamped to [0, 1]. */
function cosineBetween(max: number, min: number, tau: number): number {
  const t = Math.min(1, Math.max(0, tau));
  return min + 0.5 * (max - min) * (1 + Math.cos(Math.PI * t));
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 1) throw new InputError(`schedule: step must be an integer ≥ 1 (1-based update index), got ${step}`);
}

/**
 * The lr of update `step` (1-based) when `tokens` tokens have been consumed before it.
 * For `'paper'` the warmup factor min(1, t/warmup) multiplies the token-phase lr.
 */
export function learningRate(schedule: LrSchedule, step: number, tokens: number): number {
  checkStep(step);
  const warm = schedule.warmupSteps > 0 ? Math.min(1, step / schedule.warmupSteps) : 1;
  if (schedule.kind === 'cosine') {
    if (step <= schedule.warmupSteps) return schedule.peak * warm;
    const after = step - schedule.warmupSteps - schedule.holdSteps;
    if (after <= 0) return schedule.peak;
    return cosineBetween(schedule.peak, schedule.min, schedule.decaySteps > 0 ? after / schedule.decaySteps : 1);
  }
  let base: number;
  if (tokens < schedule.decayStartTokens) base = schedule.peak;
  else {
    base = cosineBetween(schedule.peak, schedule.min, (tokens - schedule.decayStartTokens) / schedule.decayTokens);
    for (const phase of schedule.tail) if (tokens >= phase.fromTokens) base = phase.lr;
  }
  return warm * base;
}

/** A value that switches from `initial` to `final` once `switchTokens` tokens have been consumed. */
export interface StepValueSchedule {
  initial: number;
  final: number;
  switchTokens: number;
}

/** MTP weight λ for V3 (SPEC §4.2): 0.3 for the first 10 T tokens, then 0.1. */
export const DEEPSEEK_V3_MTP_LAMBDA: StepValueSchedule = { initial: 0.3, final: 0.1, switchTokens: 10e12 };

/** Bias update speed γ for V3 (SPEC §5.2): 0.001 for the first 14.3 T tokens, then 0. */
export const DEEPSEEK_V3_BIAS_GAMMA: StepValueSchedule = { initial: 0.001, final: 0, switchTokens: 14.3e12 };

/** The value of a two-level schedule after `tokens` consumed tokens (switches at ≥ switchTokens). */
export function stepValue(schedule: StepValueSchedule, tokens: number): number {
  return tokens < schedule.switchTokens ? schedule.initial : schedule.final;
}

/** Piecewise-linear batch-size ramp: `[tokens, batchSize]` knots with ascending tokens; constant outside. */
export type BatchRamp = readonly (readonly [number, number])[];

/** V3 (SPEC §5.7): 3072 sequences rising linearly to 15360 over the first 469 B tokens [UNVERIFIED shape]. */
export const DEEPSEEK_V3_BATCH_RAMP: BatchRamp = [
  [0, 3072],
  [469e9, 15360],
];

/** Batch size (sequences, rounded to the nearest integer) after `tokens` consumed tokens. */
export function batchSizeAt(ramp: BatchRamp, tokens: number): number {
  if (ramp.length === 0) throw new InputError('batchSizeAt: the ramp needs at least one [tokens, batchSize] knot');
  if (tokens <= ramp[0]![0]) return Math.round(ramp[0]![1]);
  for (let i = 1; i < ramp.length; i++) {
    const [t0, b0] = ramp[i - 1]!;
    const [t1, b1] = ramp[i]!;
    if (t1 < t0) throw new InputError(`batchSizeAt: knot ${i} at ${t1} tokens precedes knot ${i - 1} at ${t0}`);
    if (tokens < t1) return Math.round(b0 + ((b1 - b0) * (tokens - t0)) / (t1 - t0));
  }
  return Math.round(ramp[ramp.length - 1]![1]);
}
