/**
 * `--numerics fp8-train` on the CLI: `dsv3 grad` writes the same loss and gradients as lossAndGrads in-process,
 * `dsv3 trace --grads` records each FP8 GEMM's quantized operands under the documented names
 * (docs/components/fp8-training.md), `dsv3 verify --grads` compares a step with them, `dsv3 train` runs it, and misuse
 * exits 2 with one line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { loadModel } from '../../src/model/weights_node.js';
import { traceOrderFromMetadata } from '../../src/verify/trace.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { dsv3, ensureBuilt, ROOT } from './helpers.js';

beforeAll(ensureBuilt, 180_000);

const V3 = join(ROOT, 'tests/fixtures/golden/v3');
const tmp = mkdtempSync(join(tmpdir(), 'dsv3-fp8train-'));
const ids = join(tmp, 'ids.json');
const rows = [
  [5, 17, 3, 200, 9, 1],
  [8, 8, 2, 100, 7, 4],
];
writeFileSync(ids, JSON.stringify(rows));

describe('dsv3 --numerics fp8-train', () => {
  it('grad: the loss and gradients of lossAndGrads({ numerics: fp8-train, fp8Train }) in-process', () => {
    const out = join(tmp, 'g.safetensors');
    // --backend js: the in-process reference below runs the js kernels (the CLI's default is wasm)
    const r = dsv3(['grad', '--model', V3, '--input', ids, '--numerics', 'fp8-train', '--fp8-scale-fmt', 'ue8m0', '--backend', 'js', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const file = readSafetensorsFile(out);
    const { config, weights } = loadModel(V3, { dtype: 'float32' });
    const want = new DeepSeekV3(config, weights).lossAndGrads(rows, { mtp: false, balanceAlpha: 0, numerics: 'fp8-train', fp8Train: { scaleFmt: 'ue8m0' } });
    expect(JSON.parse(r.stdout).loss).toBe(want.loss.main);
    const g = file.tensors.get('grad.model.layers.1.self_attn.kv_b_proj.weight')!;
    expect([...new Float32Array(g.bytes.slice().buffer)]).toEqual([...want.grads.get('model.layers.1.self_attn.kv_b_proj.weight')!.data]);
  });

  it('trace --grads: codes (I32) and scales (F32) of each GEMM under <module>:<fprop|dgrad|wgrad>.<operand>', () => {
    const out = join(tmp, 't.safetensors');
    const r = dsv3(['trace', '--model', V3, '--input', ids, '--grads', '--numerics', 'fp8-train', '--filter', 'model.layers.0.mlp.down_proj:*', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const file = readSafetensorsFile(out);
    const p = 'model.layers.0.mlp.down_proj';
    const names = traceOrderFromMetadata(file.metadata); // execution order
    expect(names).toEqual([
      `${p}:fprop.x.codes`,
      `${p}:fprop.x.scales`,
      `${p}:fprop.w.codes`,
      `${p}:fprop.w.scales`,
      `${p}:fprop.out`,
      `${p}:dgrad.dy.codes`,
      `${p}:dgrad.dy.scales`,
      `${p}:dgrad.out`,
      `${p}:wgrad.dyT.codes`,
      `${p}:wgrad.dyT.scales`,
      `${p}:wgrad.xT.codes`,
      `${p}:wgrad.xT.scales`,
    ]);
    const { config } = loadModel(V3, { dtype: 'float32' });
    const [d, I, N] = [config.hiddenSize, config.intermediateSize, 10];
    expect(file.tensors.get(`${p}:fprop.x.codes`)).toMatchObject({ dtype: 'I32', shape: [N, I] });
    expect(file.tensors.get(`${p}:fprop.x.scales`)).toMatchObject({ dtype: 'F32', shape: [N, Math.ceil(I / 128)] });
    expect(file.tensors.get(`${p}:fprop.w.scales`)).toMatchObject({ shape: [Math.ceil(d / 128), Math.ceil(I / 128)] });
    expect(file.tensors.get(`${p}:wgrad.xT.codes`)).toMatchObject({ shape: [I, N] });
    expect(file.tensors.get(`${p}:wgrad.dyT.scales`)).toMatchObject({ shape: [d, 1] });
  });

  it('verify --grads --numerics fp8-train: a step traced with the same flags passes tensor by tensor (codes exactly)', () => {
    const ref = join(tmp, 'ref.safetensors');
    const flags = ['--model', V3, '--input', ids, '--grads', '--numerics', 'fp8-train', '--fp8-scale-fmt', 'ue8m0'];
    expect(dsv3(['trace', ...flags, '--out', ref]).code).toBe(0);
    const r = dsv3(['verify', ...flags, '--reference', ref]);
    expect(r.code, r.stderr).toBe(0);
    const n = Number(/All (\d+) compared tensors pass/.exec(r.stdout)?.[1]);
    expect(n).toBeGreaterThan(100);
    // the same reference against the amax/448 scales: the scales (and so codes and gradients) differ
    const diff = dsv3(['verify', '--model', V3, '--input', ids, '--grads', '--numerics', 'fp8-train', '--reference', ref]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/First divergent tensor: model\.layers\.0\.self_attn\.q_a_proj:fprop\.x\.codes\./);
  });

  it('train: a few fp8-train steps with ue8m0 scales and bf16 AdamW moments', () => {
    const r = dsv3(['train', '--preset', 'tiny', '--steps', '2', '--batch', '1', '--seq', '16', '--numerics', 'fp8-train', '--fp8-scale-fmt', 'ue8m0', '--adam-moments', 'bf16', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.history).toHaveLength(2);
    expect(j.final.total).toBeGreaterThan(0);
  });

  it('misuse exits 2 with one line', () => {
    const cases: [string[], RegExp][] = [
      [['trace', '--model', V3, '--input', ids, '--numerics', 'fp8-train', '--out', join(tmp, 'x')], /fp8-train is a training mode: add --grads/],
      [['grad', '--model', V3, '--input', ids, '--fp8-scale-fmt', 'ue8m0', '--out', join(tmp, 'x')], /--fp8-\* flags need --numerics fp8-train/],
      [['grad', '--model', V3, '--input', ids, '--numerics', 'fp8', '--out', join(tmp, 'x')], /--numerics must be exact or fp8-train/],
      [['grad', '--model', V3, '--input', ids, '--numerics', 'fp8-train', '--fp8-amax-clamp', 'tiny', '--out', join(tmp, 'x')], /amaxClamp = "tiny"/],
      [['train', '--preset', 'tiny', '--steps', '1', '--adam-moments', 'fp8'], /--adam-moments must be param or bf16/],
    ];
    for (const [args, msg] of cases) {
      const r = dsv3(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});
