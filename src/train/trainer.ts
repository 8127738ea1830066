/**
 * The training loop (SPEC §5.8): one step = micro-batches → accumulate → clip → AdamW at the
 * current lr → router-bias update from the step's summed loads → report.
 */
import { InputError } from '../errors.js';
import { DeepSeekV3, type LossOptions, type TokenBatch } from '../model/model.js';
import { Tensor } from '../tensor.js';
import { GradientAccumulator, countTargets, releaseBuffers, residentBuffers } from './accumulate.js';
import { AdamW, type AdamWOptions } from './adamw.js';
import { loadStats, updateRouterBias, type LoadStats, type RouterBiasDType } from './bias_update.js';
import { clipGradNorm } from './clip.js';
import type { TokenStream, TokenStreamState } from './data.js';
import { learningRate, stepValue, type LrSchedule, type StepValueSchedule } from './schedule.js';

/** Loss parts of one step (or micro-batch). */
export interface LossParts {
  main: number;
  mtp: number;
  balance: number;
  total: number;
}

/** What a model must provide to be trained. `DeepSeekV3` satisfies it. */
export interface TrainableModel {
  /** Parameters (and router biases) by HF name; updated in place. */
  readonly weights: Map<string, Tensor>;
  /**
   * Loss parts and gradients of the batch's MEAN loss (gradients under the weights' names), the
   * number of non-ignored main targets, and per MoE layer the expert loads with the name of its router bias.
   */
  lossAndGrads(
    batch: TokenBatch,
    opts: LossOptions,
  ): { loss: LossParts; grads: Map<string, Tensor>; loads: readonly { biasName: string; load: Int32Array }[]; targets: number };
}

/** A scalar or a token-switched schedule of it. */
export type ScheduledValue = number | StepValueSchedule;

/** Options of {@link Trainer}. */
export interface TrainerOptions {
  /** The token stream batches are drawn from. */
  data: TokenStream;
  /** Learning rate: a schedule or a function of (1-based step, tokens consumed before it). */
  lr: LrSchedule | ((step: number, tokens: number) => number);
  /** Micro-batches per optimizer step (default 1). */
  microBatches?: number;
  /** Global-norm clipping threshold (default 1.0; `Infinity` disables). */
  maxGradNorm?: number;
  /** AdamW options (defaults: SPEC §5.5). */
  optimizer?: AdamWOptions;
  /** Router-bias update speed γ (default 0.001; 0 disables), SPEC §5.2. */
  biasGamma?: ScheduledValue;
  /** Mean-subtracted bias update (see `updateRouterBias`). */
  biasCentred?: boolean;
  /** Bias-update arithmetic: 'float32' (default, the checkpoint's F32 even in a float64 model) or 'model'. */
  biasDtype?: RouterBiasDType;
  /** MTP λ (default 0.3), SPEC §4.2. */
  mtpLambda?: ScheduledValue;
  /** Other options passed to every `lossAndGrads` call (attn, balanceAlpha, mtp, ...). */
  lossOptions?: Omit<LossOptions, 'mtpLambda'>;
  /** Called after every step. */
  onStep?: (report: TrainStepReport) => void;
}

/** Per-step report. */
export interface TrainStepReport {
  /** 1-based index of the step just done. */
  step: number;
  /** Loss parts of the global batch (micro-batch losses weighted like their gradients). */
  loss: LossParts;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used. */
  lr: number;
  /** Router-bias γ used. */
  biasGamma: number;
  /** Tokens consumed by this step (B·T per micro-batch) and in total after it. */
  tokens: number;
  tokensTotal: number;
  /** Wall-clock throughput of this step. */
  tokensPerSec: number;
  /** Per MoE layer: the router-bias name and load statistics over the step's micro-batches. */
  loads: { biasName: string; stats: LoadStats }[];
}

/** Everything that advances during training besides the weights and AdamW moments. */
export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  /** Tokens consumed. */
  tokens: number;
  data: TokenStreamState;
}

function scheduled(v: ScheduledValue, tokens: number): number {
  return typeof v === 'number' ? v : stepValue(v, tokens);
}

/** Runs optimizer steps of a {@link TrainableModel} over a {@link TokenStream}. */
export class Trainer {
  readonly model: TrainableModel;
  readonly optimizer: AdamW;
  readonly data: TokenStream;
  private readonly opts: TrainerOptions;
  private readonly accumulator: GradientAccumulator;
  // the gradient buffers lossAndGrads fills at every micro-batch (a DeepSeekV3 model; resident where possible)
  private readonly gradBuffers: Map<string, Tensor> | null;
  private released = false;
  private stepCount = 0;
  private tokenCount = 0;

  constructor(model: TrainableModel, opts: TrainerOptions) {
    const micro = opts.microBatches ?? 1;
    if (!Number.isInteger(micro) || micro < 1) throw new InputError(`Trainer: microBatches must be a positive integer, got ${micro}`);
    this.model = model;
    this.opts = opts;
    this.data = opts.data;
    this.optimizer = new AdamW(model.weights, opts.optimizer);
    this.accumulator = new GradientAccumulator(model.weights, this.optimizer.names);
    this.gradBuffers = model instanceof DeepSeekV3 && opts.lossOptions?.grads === undefined ? residentBuffers(model.weights, undefined, 'Trainer') : null;
  }

  /**
   * Gives back the wasm memory of the optimizer moments, the accumulator and the gradient buffers (resident when the
   * f32 backend's memory is shared; otherwise nothing is held). Idempotent; the trainer cannot step afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.optimizer.release();
    this.accumulator.release();
    if (this.gradBuffers !== null) releaseBuffers(this.gradBuffers);
  }

  /** Optimizer steps done. */
  get step(): number {
    return this.stepCount;
  }

  /** Tokens consumed so far. */
  get tokens(): number {
    return this.tokenCount;
  }

  /** The learning rate of the next step. */
  nextLearningRate(): number {
    const { lr } = this.opts;
    const t = this.stepCount + 1;
    return typeof lr === 'function' ? lr(t, this.tokenCount) : learningRate(lr, t, this.tokenCount);
  }

  /**
   * One optimizer step. Micro-batch k's mean-loss gradient is weighted by N_k/N_global (its share of
   * the step's non-ignored targets) so the sum is the gradient of the global token-mean loss
   * (SPEC §5.8). The MTP and balance parts are per-sequence means: the same weights are exact for
   * them when every micro-batch has the same B and target count, which a TokenStream guarantees.
   */
  trainStep(): TrainStepReport {
    const started = performance.now();
    const lr = this.nextLearningRate();
    const tokensBefore = this.tokenCount;
    const gamma = scheduled(this.opts.biasGamma ?? 0.001, tokensBefore);
    if (this.released) throw new InputError('Trainer: trainStep after release()');
    const lossOpts: LossOptions = { ...this.opts.lossOptions, mtpLambda: scheduled(this.opts.mtpLambda ?? 0.3, tokensBefore), ...(this.gradBuffers !== null ? { grads: this.gradBuffers } : {}) };
    const batches: TokenBatch[] = [];
    for (let k = 0; k < (this.opts.microBatches ?? 1); k++) batches.push(this.data.next());
    const targets = batches.map(countTargets);
    const nGlobal = targets.reduce((a, b) => a + b, 0);
    if (nGlobal === 0) throw new InputError(`Trainer step ${this.stepCount + 1}: the global batch has no non-ignored targets`);

    // one micro-batch: its gradient is the step's (weight exactly 1), used as is without the accumulator's zero + axpy passes
    const single = batches.length === 1;
    let singleGrads: Map<string, Tensor> | null = null;
    if (!single) this.accumulator.zero();
    const loss: LossParts = { main: 0, mtp: 0, balance: 0, total: 0 };
    const loads = new Map<string, Int32Array>();
    let tokens = 0;
    batches.forEach((batch, k) => {
      const r = this.model.lossAndGrads(batch, lossOpts);
      const w = targets[k]! / nGlobal;
      if (single) singleGrads = this.trainableGrads(r.grads);
      else this.accumulator.add(r.grads, w);
      loss.main += w * r.loss.main;
      loss.mtp += w * r.loss.mtp;
      loss.balance += w * r.loss.balance;
      loss.total += w * r.loss.total;
      // loads over all micro-batches of the step (SPEC §5.2)
      for (const { biasName, load } of r.loads) {
        const sum = loads.get(biasName) ?? new Int32Array(load.length);
        for (let e = 0; e < load.length; e++) sum[e] = sum[e]! + load[e]!;
        loads.set(biasName, sum);
      }
      tokens += batch.B * batch.T;
    });

    const grads = singleGrads ?? this.accumulator.grads;
    const gradNorm = clipGradNorm(grads, this.opts.maxGradNorm ?? 1.0);
    this.optimizer.step(grads, lr);
    // bias update after the optimizer step, outside autograd (SPEC §5.2)
    const loadReport: TrainStepReport['loads'] = [];
    for (const [biasName, load] of loads) {
      const bias = this.model.weights.get(biasName);
      if (bias === undefined) throw new InputError(`Trainer: the model reported loads for '${biasName}', which is not among its weights`);
      if (gamma !== 0) updateRouterBias(bias, load, gamma, { centred: this.opts.biasCentred ?? false, biasDtype: this.opts.biasDtype ?? 'float32' });
      loadReport.push({ biasName, stats: loadStats(load) });
    }
    this.stepCount++;
    this.tokenCount += tokens;
    const seconds = (performance.now() - started) / 1000;
    const report: TrainStepReport = {
      step: this.stepCount,
      loss,
      gradNorm,
      lr,
      biasGamma: gamma,
      tokens,
      tokensTotal: this.tokenCount,
      tokensPerSec: seconds > 0 ? tokens / seconds : Infinity,
      loads: loadReport,
    };
    this.opts.onStep?.(report);
    return report;
  }

  /** The gradients of the optimizer's parameters (what the accumulator would hold): missing ones are zeros. */
  private trainableGrads(grads: Map<string, Tensor>): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of this.optimizer.names) {
      const p = this.model.weights.get(name)!;
      out.set(name, grads.get(name) ?? Tensor.zeros(p.shape, p.dtype));
    }
    return out;
  }

  /** Runs `steps` optimizer steps; returns their reports. */
  train(steps: number): TrainStepReport[] {
    const reports: TrainStepReport[] = [];
    for (let i = 0; i < steps; i++) reports.push(this.trainStep());
    return reports;
  }

  /** Step, tokens and data position (a copy); weights and moments are saved separately (checkpoint.ts). */
  getState(): TrainerState {
    return { step: this.stepCount, tokens: this.tokenCount, data: this.data.getState() };
  }

  /** Restores a state from {@link getState}. */
  setState(state: TrainerState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new InputError(`Trainer.setState: bad step ${state.step}`);
    if (!(state.tokens >= 0)) throw new InputError(`Trainer.setState: bad token count ${state.tokens}`);
    this.data.setState(state.data);
    this.stepCount = state.step;
    this.tokenCount = state.tokens;
  }
}
