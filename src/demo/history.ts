/**
 * What a training run leaves behind for plots and tables: per step the loss parts, lr, gradient norm,
 * throughput and, per MoE layer, the expert loads (SPEC §5.2). Built from the Trainer's step reports.
 */
import { InputError } from '../errors.js';
import type { TrainStepReport } from '../train/trainer.js';

/** One optimizer step of a recorded run. */
export interface HistoryStep {
  /** 1-based step index. */
  step: number;
  /** Main next-token CE (nats/token). */
  main: number;
  /** L_MTP = λ/D·Σ_k CE_k (0 with MTP off). */
  mtp: number;
  /** Σ over MoE layers of the sequence-wise balance loss (SPEC §5.3). */
  balance: number;
  total: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
  /** Per MoE layer, in {@link TrainingHistory.layers} order: (token, slot) assignments per expert. */
  loads: number[][];
  /** Per MoE layer: max load / mean load (1 = balanced, top-k/…: collapsed). */
  maxOverMean: number[];
}

/** Label of the MoE layer whose router bias is `biasName` (`model.layers.3.mlp.gate.e_score_correction_bias` → `layer 3`). */
export function moeLayerLabel(biasName: string, numHiddenLayers: number): string {
  const m = /^model\.layers\.(\d+)\./.exec(biasName);
  if (m === null) return biasName;
  const l = Number(m[1]);
  return l >= numHiddenLayers ? `layer ${l} (MTP ${l - numHiddenLayers + 1})` : `layer ${l}`;
}

/** Per-step records of a run, with the MoE layers (router bias names) fixed by the first step. */
export class TrainingHistory {
  readonly steps: HistoryStep[] = [];
  /** Router-bias names of the MoE layers, in the order of {@link HistoryStep.loads}. */
  layers: string[] = [];

  /** Appends a Trainer step report; returns the stored record. */
  add(report: TrainStepReport): HistoryStep {
    if (this.steps.length === 0) this.layers = report.loads.map((l) => l.biasName);
    const byName = new Map(report.loads.map((l) => [l.biasName, l.stats]));
    if (byName.size !== this.layers.length || this.layers.some((n) => !byName.has(n))) {
      throw new InputError(`TrainingHistory: step ${report.step} reports MoE layers [${[...byName.keys()].join(', ')}], expected [${this.layers.join(', ')}]`);
    }
    const stats = this.layers.map((n) => byName.get(n)!);
    const rec: HistoryStep = {
      step: report.step,
      main: report.loss.main,
      mtp: report.loss.mtp,
      balance: report.loss.balance,
      total: report.loss.total,
      lr: report.lr,
      gradNorm: report.gradNorm,
      tokensPerSec: report.tokensPerSec,
      loads: stats.map((s) => s.counts),
      maxOverMean: stats.map((s) => s.maxOverMean),
    };
    this.steps.push(rec);
    return rec;
  }
}

/**
 * Means of `values` over consecutive windows of `window` entries (the last window may be shorter):
 * single steps are noisy, window means are what curves are compared on.
 */
export function windowMeans(values: readonly number[], window: number): number[] {
  if (!Number.isInteger(window) || window < 1) throw new InputError(`windowMeans: window must be a positive integer, got ${window}`);
  const out: number[] = [];
  for (let i = 0; i < values.length; i += window) {
    const part = values.slice(i, i + window);
    out.push(part.reduce((a, b) => a + b, 0) / part.length);
  }
  return out;
}
