/**
 * The noise-calibrated mode against broken references at bf16 precision: the independent reference forward
 * (helpers/reference_forward.ts) in its bf16 mode imitates a bf16 backend on the GPU fixture's FP8 checkpoint, with
 * each of the three port bugs real ports shipped injected. `compareCalibrated` (truth: the library in f64, noise:
 * the library's official-bf16 profile) must pass the correct bf16 reference and name each bug's tensor first —
 * where a fixed tolerance cannot: the correct bf16 reference fails most tensors at the default tolerances.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { loadModel } from '../../src/model/weights_node.js';
import { Tensor } from '../../src/tensor.js';
import { compareCalibrated, CALIBRATED_K } from '../../src/verify/calibrated.js';
import { compareTraces } from '../../src/verify/compare.js';
import { TraceRecorder } from '../../src/verify/trace.js';
import { ROOT } from '../cli/helpers.js';
import { referenceForward, type ReferenceBugs } from './helpers/reference_forward.js';

const FP8MODEL = join(ROOT, 'tests/fixtures/gpu/fp8model');
const ids64 = readSafetensorsFile(join(FP8MODEL, 'expected.safetensors')).tensors.get('input_ids')!;
const flat = Array.from(new BigInt64Array(ids64.bytes.slice().buffer), Number);
const IDS = [flat.slice(0, 12), flat.slice(12)];

const exact = loadModel(FP8MODEL, { dtype: 'float64' });
const f32 = loadModel(FP8MODEL, { dtype: 'float32' });
const config = exact.config;
const firstMoe = config.firstKDenseReplace;
const moeLayers = Array.from({ length: config.numHiddenLayers }, (_, l) => l).filter((l) => l >= firstMoe);

/** Every router bias set to −2: correct routing unchanged, but every ŝ < 0, so a 0 group mask beats allowed experts. */
function negativeBias<T extends Map<string, Tensor>>(w: T): T {
  const out = new Map(w) as T;
  for (const l of moeLayers) {
    const name = `model.layers.${l}.mlp.gate.e_score_correction_bias`;
    const t = w.get(name)!;
    out.set(name, new Tensor(t.shape, t.dtype === 'float64' ? new Float64Array(t.size).fill(-2) : new Float32Array(t.size).fill(-2)));
  }
  return out;
}

function traces(neg: boolean): { truth: TraceRecorder; noise: TraceRecorder; weights: Map<string, Tensor> } {
  const w64 = neg ? negativeBias(exact.weights) : exact.weights;
  const w32 = neg ? negativeBias(f32.weights) : f32.weights;
  const truth = new TraceRecorder();
  new DeepSeekV3(config, w64).forward(IDS, { trace: truth.trace });
  const noise = new TraceRecorder();
  new DeepSeekV3(config, w32, { fp8: f32.fp8 }).forward(IDS, { trace: noise.trace, numerics: 'official-bf16' });
  return { truth, noise, weights: w64 };
}

function reference(w: Map<string, Tensor>, bugs: ReferenceBugs): TraceRecorder {
  const rec = new TraceRecorder();
  referenceForward(config, w, IDS, rec.trace, bugs, { bf16: true });
  return rec;
}

const plain = traces(false);
const neg = traces(true);
const router = (w: Map<string, Tensor>) => ({ shape: config, bias: (p: string) => w.get(`${p}.gate.e_score_correction_bias`)?.data });

const CASES: { bug: keyof ReferenceBugs; expected: string; negativeBias: boolean }[] = [
  { bug: 'groupMaskZero', expected: `model.layers.${firstMoe}.mlp.gate:indices`, negativeBias: true },
  { bug: 'biasInWeights', expected: `model.layers.${firstMoe}.mlp.gate:weights`, negativeBias: false },
  { bug: 'ropeHalfSplit', expected: 'model.layers.0.self_attn:q_pe', negativeBias: false },
];

describe('calibrated mode, bf16 references on the FP8 fixture (official-bf16 noise)', () => {
  it.each([false, true])('the correct bf16 reference passes every tensor (negative biases: %s); the fixed tolerance fails it', (isNeg) => {
    const t = isNeg ? neg : plain;
    const ref = reference(t.weights, {});
    const r = compareCalibrated(t.truth.tensors, t.noise.tensors, ref.tensors, { numerics: 'official-bf16', router: router(t.weights) });
    expect(r.results.filter((x) => x.status === 'fail').map((x) => `${x.name}: ${x.reasons.join('; ')}`)).toEqual([]);
    expect(r.allPassed).toBe(true);
    expect(r.passed).toBeGreaterThan(30);
    const fixed = compareTraces(t.truth.tensors, ref.tensors);
    expect(fixed.failed).toBeGreaterThan(fixed.passed);
  });

  it.each(CASES)('$bug: first divergent tensor is $expected', ({ bug, expected, negativeBias }) => {
    const t = negativeBias ? neg : plain;
    const r = compareCalibrated(t.truth.tensors, t.noise.tensors, reference(t.weights, { [bug]: true }).tensors, { numerics: 'official-bf16', router: router(t.weights) });
    expect(r.firstDivergent).toBe(expected);
    const first = r.results.find((x) => x.name === expected)!;
    if (first.calibrated !== null) expect(first.calibrated.ratio).toBeGreaterThan(CALIBRATED_K);
  });
});
