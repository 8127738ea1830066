/**
 * Regression tests for `verify` with deliberately broken references: the three bugs real ports
 * shipped (group mask 0 instead of −∞, bias added into the gating weights, RoPE in half-split
 * layout). An independent f64 reference forward (helpers/reference_forward.ts) produces the
 * dumps; verify must pass the correct one and name the first divergent tensor of each broken one,
 * in process and through the `dsv3 verify` subprocess.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeepSeekV3 } from '../../src/model/model.js';
import { loadModel, saveModel } from '../../src/model/weights_node.js';
import { Tensor } from '../../src/tensor.js';
import { compareTraces, type CompareOptions } from '../../src/verify/compare.js';
import { TraceRecorder } from '../../src/verify/trace.js';
import { dsv3, ensureBuilt, ROOT } from '../cli/helpers.js';
import { referenceForward, type ReferenceBugs } from './helpers/reference_forward.js';

const GOLDEN_V3 = join(ROOT, 'tests/fixtures/golden/v3');
// Tokens < vocab 288; fixed so the test is deterministic.
const IDS = [
  [5, 17, 3, 200, 9, 1, 44],
  [8, 8, 2, 100, 287, 0, 12],
];
// f64 library vs f64 reference: both compute the same sums in different orders, ~1e-15 relative.
const F64_TOL: CompareOptions = { tolerance: { rtol: 1e-9, atol: 1e-11 }, cosDiffTol: 1e-12 };

const { config, weights } = loadModel(GOLDEN_V3, { dtype: 'float64' });
const moeLayers = Array.from({ length: config.numHiddenLayers }, (_, l) => l).filter((l) => l >= config.firstKDenseReplace);
const firstMoe = moeLayers[0]!;

/**
 * The same weights with every router bias set to −2: a uniform shift leaves every correct routing
 * decision unchanged but makes every score + bias negative, so a 0 group mask beats every allowed
 * expert (with the golden biases, score + bias > 0 and the 0 mask happens to be harmless).
 */
function negativeBiasWeights(): Map<string, Tensor> {
  const w = new Map(weights);
  for (const l of moeLayers) {
    const name = `model.layers.${l}.mlp.gate.e_score_correction_bias`;
    w.set(name, new Tensor(weights.get(name)!.shape, new Float64Array(config.nRoutedExperts).fill(-2)));
  }
  return w;
}

function libraryTrace(w: Map<string, Tensor>): TraceRecorder {
  const rec = new TraceRecorder();
  new DeepSeekV3(config, w).forward(IDS, { trace: rec.trace });
  return rec;
}

function referenceTrace(w: Map<string, Tensor>, bugs: ReferenceBugs): TraceRecorder {
  const rec = new TraceRecorder();
  referenceForward(config, w, IDS, rec.trace, bugs);
  return rec;
}

const CASES: { bug: keyof ReferenceBugs; expected: string; negativeBias: boolean }[] = [
  { bug: 'groupMaskZero', expected: `model.layers.${firstMoe}.mlp.gate:indices`, negativeBias: true },
  { bug: 'biasInWeights', expected: `model.layers.${firstMoe}.mlp.gate:weights`, negativeBias: false },
  { bug: 'ropeHalfSplit', expected: 'model.layers.0.self_attn:q_pe', negativeBias: false },
];

describe('verify against an independent reference (in process)', () => {
  it.each([false, true])('the correct reference passes every tensor (negative biases: %s)', (neg) => {
    const w = neg ? negativeBiasWeights() : weights;
    const r = compareTraces(libraryTrace(w).tensors, referenceTrace(w, {}).tensors, F64_TOL);
    expect(r.missingInLibrary).toEqual([]);
    expect(r.missingInReference).toEqual([]);
    expect(r.results.filter((x) => x.status === 'fail').map((x) => `${x.name}: ${x.reasons.join('; ')}`)).toEqual([]);
    expect(r.allPassed).toBe(true);
  });

  it.each(CASES)('$bug: first divergent tensor is $expected', ({ bug, expected, negativeBias }) => {
    const w = negativeBias ? negativeBiasWeights() : weights;
    const r = compareTraces(libraryTrace(w).tensors, referenceTrace(w, { [bug]: true }).tensors, F64_TOL);
    expect(r.firstDivergent).toBe(expected);
    const i = r.results.findIndex((x) => x.name === expected);
    expect(r.results.slice(0, i).every((x) => x.status === 'pass')).toBe(true);
    // the divergence propagates to the logits
    expect(r.results.find((x) => x.name === 'lm_head:out')!.status).toBe('fail');
  });
});

describe('dsv3 verify with broken references (subprocess)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dsv3-verify-'));
  const idsPath = join(tmp, 'ids.json');
  const negDir = join(tmp, 'v3-negative-bias');
  beforeAll(async () => {
    await ensureBuilt();
    writeFileSync(idsPath, JSON.stringify(IDS));
    saveModel(negDir, config, negativeBiasWeights(), { dtype: 'F64' });
  }, 180_000);

  function dump(name: string, w: Map<string, Tensor>, bugs: ReferenceBugs): string {
    const path = join(tmp, name);
    writeFileSync(path, referenceTrace(w, bugs).serialize());
    return path;
  }

  it('the correct reference: exit 0 in f64 at 1e-9, and in f32 at the default tolerances', () => {
    const ref = dump('ok.safetensors', weights, {});
    const f64 = dsv3(['verify', '--model', GOLDEN_V3, '--input', idsPath, '--reference', ref, '--dtype', 'float64', '--rtol', '1e-9', '--atol', '1e-11', '--cos-tol', '1e-12']);
    expect(f64.stdout).toContain('compared tensors pass');
    expect(f64.code).toBe(0);
    const f32 = dsv3(['verify', '--model', GOLDEN_V3, '--input', idsPath, '--reference', ref]);
    expect(f32.stdout).toContain('compared tensors pass');
    expect(f32.code).toBe(0);
  });

  it.each(CASES)('$bug: exit 1 and the report names $expected first', ({ bug, expected, negativeBias }) => {
    const ref = dump(`${bug}.safetensors`, negativeBias ? negativeBiasWeights() : weights, { [bug]: true });
    const report = join(tmp, `${bug}.json`);
    // default f32 run and default tolerances: the bug must stand out from f32 noise
    const r = dsv3(['verify', '--model', negativeBias ? negDir : GOLDEN_V3, '--input', idsPath, '--reference', ref, '--report', report]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`First divergent tensor: ${expected}.`);
  });
});
