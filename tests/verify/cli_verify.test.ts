/**
 * `dsv3 verify` as users run it (subprocess): the calibrated mode on the official H200 traces and on a broken bf16
 * reference, the hints (--grads, naming), `dsv3 dump-script`, and the demo's trace verified out of the box.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { runDemo } from '../../src/demo/demo.js';
import { loadModel, saveModel } from '../../src/model/weights_node.js';
import { TraceRecorder } from '../../src/verify/trace.js';
import { dsv3, ensureBuilt, ROOT } from '../cli/helpers.js';
import { referenceForward } from './helpers/reference_forward.js';

const FP8 = join(ROOT, 'tests/fixtures/gpu/fp8model');
const V3 = join(ROOT, 'tests/fixtures/golden/v3');
const tmp = mkdtempSync(join(tmpdir(), 'dsv3-verify-cli-'));
const t = readSafetensorsFile(join(FP8, 'expected.safetensors')).tensors.get('input_ids')!;
const flat = Array.from(new BigInt64Array(t.bytes.slice().buffer), Number);
const IDS = [flat.slice(0, 12), flat.slice(12)];
const idsPath = join(tmp, 'ids.json');
writeFileSync(idsPath, JSON.stringify(IDS));

beforeAll(ensureBuilt, 180_000);

describe('dsv3 verify --numerics on the official H200 traces', () => {
  it.each([
    ['bf16', 'official-bf16'],
    ['fp8', 'official-fp8'],
    ['fp8ue8m0', 'official-fp8-ue8m0'],
  ])('trace_official_%s with --numerics %s: exit 0, a ratio per tensor', (file, numerics) => {
    const ref = join(FP8, `trace_official_${file}.safetensors`);
    const r = dsv3(['verify', '--model', FP8, '--input', idsPath, '--reference', ref, '--official-names', '--numerics', numerics]);
    expect(r.stdout).toContain('All 26 compared tensors pass.');
    expect(r.stdout).toContain(`Noise-calibrated (${numerics})`);
    expect(r.stdout).toMatch(/^lm_head:out +\d\.\d\d +\S+ +\S+/m);
    expect(r.code).toBe(0);
  });

  it('the same bf16 trace at the default fixed tolerances fails (what the calibrated mode fixes)', () => {
    const r = dsv3(['verify', '--model', FP8, '--input', idsPath, '--reference', join(FP8, 'trace_official_bf16.safetensors'), '--official-names']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/2\d of 26 compared tensors FAIL/);
  });

  it('a bf16 reference with half-split RoPE: exit 1, q_pe named, with its ratio', () => {
    const { config, weights } = loadModel(FP8, { dtype: 'float64' });
    const rec = new TraceRecorder();
    referenceForward(config, weights, IDS, rec.trace, { ropeHalfSplit: true }, { bf16: true });
    const ref = join(tmp, 'rope_bug.safetensors');
    writeFileSync(ref, rec.serialize());
    const r = dsv3(['verify', '--model', FP8, '--input', idsPath, '--reference', ref, '--numerics', 'official-bf16', '--report', join(tmp, 'rope.md')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('First divergent tensor: model.layers.0.self_attn:q_pe.');
    const md = readFileSync(join(tmp, 'rope.md'), 'utf8');
    expect(md).toContain('| backend err (median / worst row) | noise floor (median / worst row) | ratio |');
  });
});

describe('hints', () => {
  it('a --grads dump verified without --grads says "add --grads"; with it, it passes', () => {
    const ids5 = join(tmp, 'v3ids.json');
    writeFileSync(ids5, JSON.stringify([[5, 17, 3, 200, 9], [8, 8, 2, 100, 7]]));
    const out = join(tmp, 'grads.safetensors');
    expect(dsv3(['trace', '--model', V3, '--input', ids5, '--grads', '--out', out]).code).toBe(0);
    const r = dsv3(['verify', '--model', V3, '--input', ids5, '--reference', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Hint: the reference has gradients .* add --grads\./);
    expect(dsv3(['verify', '--model', V3, '--input', ids5, '--reference', out, '--grads']).code).toBe(0);
  });

  it('official names without --official-names: the hint names the flag', () => {
    const r = dsv3(['verify', '--model', FP8, '--input', idsPath, '--reference', join(FP8, 'trace_official_bf16.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Hint: 26 of 26 reference names have no library counterpart; the reference seems to use the official-code names .*: add --official-names\./);
  });
});

describe('dsv3 dump-script', () => {
  it('prints the shipped script; it compiles under python3 when python3 exists', () => {
    const r = dsv3(['dump-script']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(ROOT, 'examples/dump_pytorch_activations.py'), 'utf8'));
    expect(r.stdout).toContain('experts_implementation');
    // the script is in the npm tarball (what `npm pack` would include, without running the build)
    const pack = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT, encoding: 'utf8' })) as { files: { path: string }[] }[];
    expect(pack[0]!.files.map((f) => f.path)).toContain('examples/dump_pytorch_activations.py');
    if (spawnSync('python3', ['--version']).status !== 0) return; // no python3 here: the text check above stands
    const file = join(tmp, 'dump.py');
    writeFileSync(file, r.stdout);
    execFileSync('python3', ['-c', 'import sys, py_compile; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)', file, join(tmp, 'dump.pyc')]);
  });
});

describe('the demo trace verifies out of the box', () => {
  it('dsv3 verify --model model --input ids.json --reference trace.safetensors --grads: exit 0, MTP tensors compared', () => {
    const corpus = readFileSync(join(ROOT, 'data/tiny-corpus.txt'));
    const r = runDemo(corpus, { steps: 2, batch: 2, seqLen: 16, sampleTokens: 4 });
    const dir = join(tmp, 'demo');
    saveModel(join(dir, 'model'), r.config, r.model.weights, { dtype: 'F32' });
    writeFileSync(join(dir, 'trace.safetensors'), r.checks.trace.bytes);
    writeFileSync(join(dir, 'ids.json'), JSON.stringify(r.checks.trace.ids));
    const args = ['verify', '--model', join(dir, 'model'), '--input', join(dir, 'ids.json'), '--reference', join(dir, 'trace.safetensors'), '--json'];
    const ok = dsv3([...args, '--grads']);
    const j = JSON.parse(ok.stdout) as { failed: number; passed: number; missingInLibrary: string[]; results: { name: string; status: string }[] };
    expect(j.missingInLibrary).toEqual([]);
    expect(j.failed).toBe(0);
    expect(j.results.some((x) => x.name === 'model.layers.3.enorm:out' && x.status === 'pass')).toBe(true);
    expect(j.results.some((x) => x.name === 'grad.model.layers.3.eh_proj.weight' && x.status === 'pass')).toBe(true);
    expect(ok.code).toBe(0);
    const noGrads = dsv3(args.slice(0, -1));
    expect(noGrads.code).toBe(1);
    expect(noGrads.stdout).toContain('add --grads');
  }, 120_000);
});
