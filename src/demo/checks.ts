/**
 * The demo's self-verification: the properties a user should see hold on the model they just
 * trained, each measured and compared with a stated tolerance.
 * - naive and absorbed MLA compute the same function (SPEC §3.5–3.6);
 * - analytic gradients match central finite differences in f64 (SPEC §3, §5.4);
 * - a trace written as safetensors bytes and parsed back verifies against a fresh run, and a
 *   perturbed weight is caught at the first tensor it changes;
 * - greedy speculative decoding with MTP emits exactly the plain greedy tokens (SPEC §4.4).
 */
import { parseSafetensors } from '../io/safetensors.js';
import { DeepSeekV3, type LossOptions, type TokenBatch } from '../model/model.js';
import { Random } from '../random.js';
import { compareTraces } from '../verify/compare.js';
import { collectionFromSafetensors, TraceRecorder } from '../verify/trace.js';

/** Outcome of one self-check. */
export interface DemoCheck {
  name: string;
  passed: boolean;
  /** The measured figure (its meaning is in `detail`). */
  value: number;
  /** The bound `value` had to satisfy. */
  tolerance: number;
  /** One line: what was measured and how it compares. */
  detail: string;
}

function relMaxDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - ref[i]!));
    r = Math.max(r, Math.abs(ref[i]!));
  }
  return r > 0 ? m / r : m;
}

/**
 * Logits of the naive and the absorbed MLA path on the same ids [B, T]: max|Δ| / max|logit| must stay
 * below 1e-5 in f32 (every intermediate rounded to 2^-24 through ~6 chained products; the golden
 * data shows 4–6e-7) or 1e-12 in f64 (the two paths only associate the sums differently).
 */
export function checkAttentionPaths(model: DeepSeekV3, ids: Int32Array, B: number, T: number): DemoCheck {
  const naive = model.forward(ids, { B, T, attn: 'naive' }).logits.data;
  const absorb = model.forward(ids, { B, T, attn: 'absorb' }).logits.data;
  const value = relMaxDiff(absorb, naive);
  const tolerance = model.dtype === 'float32' ? 1e-5 : 1e-12;
  return {
    name: 'naive vs absorbed attention',
    passed: value <= tolerance,
    value,
    tolerance,
    detail: `logits over ${B}×${T} positions (${model.dtype}): max|absorb − naive| / max|logit| = ${value.toExponential(2)} (tolerance ${tolerance.toExponential(0)})`,
  };
}

/** The model with every tensor converted to f64 (the oracle precision). */
export function toFloat64Model(model: DeepSeekV3): DeepSeekV3 {
  if (model.dtype === 'float64') return model;
  return new DeepSeekV3(model.config, new Map([...model.weights].map(([n, t]) => [n, t.clone('float64')])));
}

/** Options of {@link checkGradients}. */
export interface GradientCheckOptions {
  /** Weight tensors sampled (default 24); in each, its largest-gradient element and one random element. */
  tensors?: number;
  /** PRNG seed of the sampling (default 0). */
  seed?: number;
}

/** Result of {@link checkGradients}: the check and its sample counts. */
export interface GradientCheck extends DemoCheck {
  checked: number;
  /** Elements skipped because ±h changed an expert selection (routing is piecewise constant). */
  skipped: number;
  worst: { name: string; index: number; fd: number; analytic: number } | null;
}

/**
 * Central finite differences in f64 of the whole objective L (main CE + MTP + balance loss, α raised to
 * 0.01 so its gradient shows above the FD noise) against `lossAndGrads`, on the model cast to f64.
 * Per element |fd − g| ≤ 1e-6·max(|g|, 1e-2·max|G|) + 10·ε·|L|/h: FD truncation O(h²) ≈ 1e-10 relative at
 * h = 1e-5; the rounding of the two loss evaluations, ≈ ε·|L|/h ≈ 1e-10 absolute, is the second term
 * (a trained model has gradients of 1e-6 and below, where it dominates); the 1e-2·max|G| floor covers
 * elements whose gradient is ~0 next to the rest of its tensor G. `value` is the largest error / bound
 * ratio (pass ≤ 1); the detail also gives the largest plain relative error.
 */
export function checkGradients(model: DeepSeekV3, batch: TokenBatch, opts: GradientCheckOptions = {}): GradientCheck {
  const h = 1e-5;
  const rtol = 1e-6;
  const m64 = toFloat64Model(model);
  const lossOpts: LossOptions = { mtpLambda: 0.3, balanceAlpha: 0.01 };
  const signature = (r: ReturnType<DeepSeekV3['lossAndGrads']>): string =>
    [...r.routing.values()].map((x) => Array.from(x.indices).join(',')).join('|');
  const base = m64.lossAndGrads(batch, lossOpts);
  const sig = signature(base);
  const fdNoise = (10 * Number.EPSILON * Math.abs(base.loss.total)) / h;
  const rng = new Random(opts.seed ?? 0);
  // the router bias only selects experts: no gradient (SPEC §3.8), nothing to check by FD
  const names = [...m64.weights.keys()].filter((n) => !n.endsWith('e_score_correction_bias'));
  for (let i = names.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [names[i], names[j]] = [names[j]!, names[i]!];
  }
  let checked = 0;
  let skipped = 0;
  let value = 0;
  // elements whose gradient is large enough that the FD noise is ≤ 1e-7 relative: plain relative error
  const large = fdNoise / 1e-7;
  let maxRel = 0;
  let nLarge = 0;
  let worst: GradientCheck['worst'] = null;
  for (const name of names.slice(0, opts.tensors ?? 24)) {
    const w = m64.weights.get(name)!;
    const g = base.grads.get(name)!.data;
    let arg = 0;
    let gmax = 0;
    for (let i = 0; i < g.length; i++) {
      if (Math.abs(g[i]!) > gmax) {
        gmax = Math.abs(g[i]!);
        arg = i;
      }
    }
    for (const i of [arg, rng.int(w.size)]) {
      const x = w.data[i]!;
      w.data[i] = x + h;
      const up = m64.lossAndGrads(batch, lossOpts);
      w.data[i] = x - h;
      const dn = m64.lossAndGrads(batch, lossOpts);
      w.data[i] = x;
      if (signature(up) !== sig || signature(dn) !== sig) {
        skipped++;
        continue;
      }
      const fd = (up.loss.total - dn.loss.total) / (2 * h);
      const an = g[i]!;
      const ratio = Math.abs(fd - an) / (rtol * Math.max(Math.abs(an), 1e-2 * gmax) + fdNoise);
      if (Math.abs(an) >= large) {
        maxRel = Math.max(maxRel, Math.abs(fd - an) / Math.abs(an));
        nLarge++;
      }
      checked++;
      if (worst === null || ratio > value) {
        value = ratio;
        worst = { name, index: i, fd, analytic: an };
      }
    }
  }
  const passed = checked > 0 && value <= 1;
  const at = worst !== null ? `; worst ${worst.name}[${worst.index}]: fd ${worst.fd.toExponential(6)} vs analytic ${worst.analytic.toExponential(6)}` : '';
  return {
    name: 'f64 gradient check',
    passed,
    value,
    tolerance: 1,
    checked,
    skipped,
    worst,
    detail: `${checked} elements of ${Math.min(names.length, opts.tensors ?? 24)} weight tensors (${skipped} skipped: routing changed under ±h): max |fd − g| / bound = ${value.toFixed(3)} (pass ≤ 1; bound 1e-6·max(|g|, 1e-2·max|G|) + ${fdNoise.toExponential(1)}), max relative error ${maxRel.toExponential(2)} over the ${nLarge} elements with |g| ≥ ${large.toExponential(0)}${at}`,
  };
}

/** Result of {@link checkTraceRoundTrip}. */
export interface TraceCheck extends DemoCheck {
  /** The recorded trace as safetensors bytes. */
  bytes: Uint8Array;
  /** The ids it ran on: rows of T + 1 (inputs ids[:, :T], targets ids[:, 1:]), for `dsv3 verify --grads`. */
  ids: number[][];
  tensors: number;
  /** First divergent tensor of the fresh run against the parsed trace (null = none). */
  firstDivergent: string | null;
  /** The weight perturbed for the negative control, and the first divergent tensor verify named. */
  perturbed: { weight: string; firstDivergent: string | null };
}

/**
 * Records the forward + backward of `batch` (every intermediate and `grad.<name>`) with a TraceRecorder,
 * writes it as safetensors bytes, parses them back and compares a fresh run against them: every tensor
 * must pass (the run is deterministic, so errors are exactly 0) and no tensor diverge. Negative control:
 * with one element of layer `perturbLayer`'s router weight moved by 0.05, verify must name a tensor of that
 * layer as the first divergent one (everything before it is unchanged).
 */
export function checkTraceRoundTrip(model: DeepSeekV3, batch: TokenBatch, perturbLayer = model.config.firstKDenseReplace): TraceCheck {
  // the objective `dsv3 verify --grads` runs on a trace with MTP tensors: next-token CE + MTP (λ 0.3), no balance loss
  const lossOpts: LossOptions = { balanceAlpha: 0 };
  const record = (): TraceRecorder => {
    const rec = new TraceRecorder();
    const r = model.lossAndGrads(batch, { ...lossOpts, trace: rec.trace });
    rec.recordMap(r.grads, 'grad.');
    return rec;
  };
  const first = record();
  const bytes = first.serialize({ source: 'dsv3 demo' });
  const reference = collectionFromSafetensors(parseSafetensors(bytes, 'demo-trace.safetensors'));
  const fresh = record();
  const result = compareTraces(fresh.tensors, reference, { order: fresh.names });

  const weight = `model.layers.${perturbLayer}.mlp.gate.weight`;
  const w = model.weights.get(weight)!;
  const old = w.data[0]!;
  w.data[0] = old + 0.05;
  let perturbedRun: TraceRecorder;
  try {
    perturbedRun = record();
  } finally {
    w.data[0] = old;
  }
  const negative = compareTraces(perturbedRun.tensors, reference, { order: perturbedRun.names });
  const caught = negative.firstDivergent !== null && negative.firstDivergent.startsWith(`model.layers.${perturbLayer}.`);
  const passed = result.allPassed && result.firstDivergent === null && result.results.length === first.size && caught;
  return {
    name: 'trace round trip through verify',
    passed,
    value: result.failed,
    tolerance: 0,
    bytes,
    ids: Array.from({ length: batch.B }, (_, b) => Array.from(batch.ids.subarray(b * (batch.T + 1), (b + 1) * (batch.T + 1)))),
    tensors: first.size,
    firstDivergent: result.firstDivergent,
    perturbed: { weight, firstDivergent: negative.firstDivergent },
    detail:
      `${first.size} tensors (${bytes.length} bytes): ${result.passed} pass, ${result.failed} fail, first divergent = ${result.firstDivergent ?? 'none'}; ` +
      `control: ${weight}[0] + 0.05 → first divergent = ${negative.firstDivergent ?? 'none'}${caught ? '' : ` (expected a tensor of model.layers.${perturbLayer})`}`,
  };
}

/** Result of {@link checkSpeculativeGreedy}. */
export interface SpeculativeCheck extends DemoCheck {
  tokens: number[];
  drafted: number;
  accepted: number;
  acceptanceRate: number | null;
}

/** Greedy decoding with and without MTP speculation from `prompt`: the tokens must be identical (SPEC §4.4). */
export function checkSpeculativeGreedy(model: DeepSeekV3, prompt: readonly number[], maxNewTokens: number): SpeculativeCheck {
  const spec = model.generate(prompt, { maxNewTokens, speculative: 'mtp' });
  const plain = model.generate(prompt, { maxNewTokens });
  let firstDiff = -1;
  for (let i = 0; i < Math.max(spec.tokens.length, plain.tokens.length); i++) {
    if (spec.tokens[i] !== plain.tokens[i]) {
      firstDiff = i;
      break;
    }
  }
  const rate = spec.acceptanceRate;
  return {
    name: 'speculative = greedy',
    passed: firstDiff === -1,
    value: firstDiff === -1 ? 0 : 1,
    tolerance: 0,
    tokens: spec.tokens,
    drafted: spec.drafted,
    accepted: spec.accepted,
    acceptanceRate: rate,
    detail:
      `${spec.tokens.length} tokens: MTP speculative decoding ${firstDiff === -1 ? 'equals' : `differs from (first at token ${firstDiff})`} plain greedy; ` +
      `acceptance ${rate === null ? 'n/a' : `${(100 * rate).toFixed(1)}%`} (${spec.accepted}/${spec.drafted} drafts), ${spec.forwardCalls} main forwards vs ${plain.forwardCalls}`,
  };
}
