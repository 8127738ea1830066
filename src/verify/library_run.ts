/**
 * The library's side of a verification: runs a model on ids and records every traced tensor, with the MTP
 * modules when the reference holds their names. Browser-safe (the CLI loads the model; this runs it).
 *
 * - Forward (default): `model.forward(ids)` at every position; with `mtp`, then MTP depth k = 1..D on the
 *   S − k positions whose targets exist in a training forward: position j combines the main model's final
 *   (normed) hidden state h_j with the embedding of ids[j + k] (SPEC §4.1), exactly as `lossAndGrads` runs it.
 * - `grads`: the training forward + backward on rows of T + 1 ids (inputs ids[:, :T], targets ids[:, 1:]) of the
 *   next-token cross-entropy, plus the MTP loss (λ = 0.3) when `mtp`; no balance loss. Records `grad.<name>`.
 */
import { InputError } from '../errors.js';
import type { AttnImpl } from '../model/attention.js';
import type { DeepSeekV3 } from '../model/model.js';
import { mtpForward, slicePositions } from '../model/mtp.js';
import type { NumericsProfile } from '../model/numerics.js';
import type { Fp8TrainOptions } from '../ops/fp8_train.js';
import type { TrainNumerics } from '../ops/linear.js';
import { TraceRecorder } from './trace.js';

/** Options of {@link libraryTrace}. */
export interface LibraryTraceOptions {
  attn?: AttnImpl;
  /** Forward + backward of the objective (rows of T + 1 ids); exact profile only. */
  grads?: boolean;
  /** Also run (and trace) the MTP modules; needs num_nextn_predict_layers > 0. */
  mtp?: boolean;
  numerics?: NumericsProfile;
  /** With `grads`: the training numerics of the gradient run ('fp8-train' also traces each FP8 GEMM's operands). */
  train?: { numerics: TrainNumerics; fp8Train?: Fp8TrainOptions };
}

/** The recorder of one library run, and the main loss with `grads`. */
export interface LibraryTrace {
  recorder: TraceRecorder;
  loss?: number;
}

/** True when `names` (library naming) hold a tensor of an MTP layer (index ≥ num_hidden_layers). */
export function holdsMtpNames(names: Iterable<string>, numHiddenLayers: number): boolean {
  for (const n of names) {
    const m = /^(?:grad\.)?model\.layers\.(\d+)[.:]/.exec(n);
    if (m !== null && Number(m[1]) >= numHiddenLayers) return true;
  }
  return false;
}

/** Runs `model` on `ids` and records the traced tensors (see the module comment). */
export function libraryTrace(model: DeepSeekV3, ids: readonly (readonly number[])[], opts: LibraryTraceOptions = {}): LibraryTrace {
  const cfg = model.config;
  const attn = opts.attn ?? 'naive';
  const numerics = opts.numerics ?? 'exact';
  const mtp = opts.mtp === true;
  if (mtp && cfg.numNextnPredictLayers === 0) throw new InputError('verify: the model has no MTP module (num_nextn_predict_layers = 0)');
  if (mtp && numerics !== 'exact') throw new InputError(`verify: the numerics profiles emulate the main model only; MTP runs in 'exact' (got ${numerics})`);
  const recorder = new TraceRecorder();
  if (opts.grads === true) {
    if (numerics !== 'exact') throw new InputError(`verify: gradients exist only in the exact profile; drop --numerics ${numerics}`);
    if (ids.length === 0 || ids[0]!.length < 2) throw new InputError('verify: gradients need rows of at least 2 ids (inputs + next-token targets)');
    const r = model.lossAndGrads(ids, { attn, trace: recorder.trace, mtp, balanceAlpha: 0, ...opts.train });
    recorder.recordMap(r.grads, 'grad.');
    return { recorder, loss: r.loss.main };
  }
  const out = model.forward(ids, { attn, trace: recorder.trace, numerics });
  if (mtp) {
    const { B, T } = out;
    const d = cfg.hiddenSize;
    const w = model.mainWeights();
    const shared = { embed_tokens: w.embed_tokens, lm_head: w.lm_head };
    const rope = model.ropeTables(T);
    let hPrev = out.finalHidden.data;
    let SPrev = T;
    for (let k = 1; k <= cfg.numNextnPredictLayers && T - k >= 1; k++) {
      const S = T - k;
      const tokens = new Int32Array(B * S);
      for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) tokens[b * S + j] = ids[b]![j + k]!;
      const o = mtpForward(cfg, model.mtpWeights(k), shared, slicePositions(hPrev, B, SPrev, S, d), tokens, B, S, { rope, attn, trace: recorder.trace });
      hPrev = o.normed; // the next depth takes this depth's normed output (lossAndGrads' default 'post_norm')
      SPrev = S;
    }
  }
  return { recorder };
}
