/**
 * `--numerics` on the CLI (subprocess, as users run it): `dsv3 forward` and `dsv3 trace` under a profile write
 * exactly what the API computes; a bad profile name or a profile with `--grads` is one stderr line, exit 2.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { tensorToFloat32 } from '../../src/io/safetensors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { dsv3, ensureBuilt } from '../cli/helpers.js';
import { FP8MODEL_DIR, loadFp8Fixture } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'dsv3-numerics-'));
const fx = loadFp8Fixture('float32');
const idsFile = join(tmp, 'ids.json');
const rows = [[...fx.ids.subarray(0, fx.T)], [...fx.ids.subarray(fx.T)]];

beforeAll(async () => {
  await ensureBuilt();
  writeFileSync(idsFile, JSON.stringify(rows));
});

test.each(['official-bf16', 'official-fp8', 'official-fp8-ue8m0'] as const)('dsv3 forward --numerics %s writes the API result', (numerics) => {
  const out = join(tmp, `${numerics}.safetensors`);
  // --backend js: the API reference below runs in-process on the js kernels (the CLI's default is wasm)
  const r = dsv3(['forward', '--model', FP8MODEL_DIR, '--input', idsFile, '--numerics', numerics, '--attn', 'absorb', '--backend', 'js', '--out', out]);
  expect(r.stderr).not.toContain('error');
  expect(r.code).toBe(0);
  const logits = tensorToFloat32(readSafetensorsFile(out).tensors.get('logits')!);
  expect(logits).toEqual(fx.model.forward(rows, { attn: 'absorb', numerics }).logits.data);
});

test('dsv3 trace --numerics official-fp8 records the profile tensors under the usual names', () => {
  const out = join(tmp, 'trace.safetensors');
  const r = dsv3(['trace', '--model', FP8MODEL_DIR, '--input', idsFile, '--numerics', 'official-fp8', '--backend', 'js', '--out', out]);
  expect(r.code).toBe(0);
  const t = readSafetensorsFile(out).tensors;
  expect(tensorToFloat32(t.get('lm_head:out')!)).toEqual(fx.model.forward(rows, { numerics: 'official-fp8' }).logits.data);
  expect(t.has('model.layers.1.mlp.gate:indices')).toBe(true);
});

test('a bad profile name and --grads with a profile are usage errors (one line, exit 2)', () => {
  const bad = dsv3(['forward', '--model', FP8MODEL_DIR, '--input', idsFile, '--numerics', 'bf16', '--out', join(tmp, 'x.safetensors')]);
  expect(bad.code).toBe(2);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  expect(bad.stderr).toContain('--numerics must be one of exact | official-bf16 | official-fp8 | official-fp8-ue8m0');
  const grads = dsv3(['trace', '--model', FP8MODEL_DIR, '--input', idsFile, '--grads', '--numerics', 'official-bf16', '--out', join(tmp, 'g.safetensors')]);
  expect(grads.code).toBe(2);
  expect(grads.stderr.trim().split('\n')).toHaveLength(1);
  expect(grads.stderr).toContain('--grads runs in the exact and fp8-train modes only');
});
