import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { traceOrderFromMetadata } from '../../src/verify/trace.js';
import { dsv3, ensureBuilt, ROOT } from './helpers.js';

beforeAll(ensureBuilt, 180_000);

const V3 = join(ROOT, 'tests/fixtures/golden/v3');
const tmp = mkdtempSync(join(tmpdir(), 'dsv3-trace-'));
const ids = join(tmp, 'ids.json');
writeFileSync(ids, JSON.stringify({ input_ids: [[5, 17, 3, 200, 9], [8, 8, 2, 100, 7]] }));

describe('dsv3 trace', () => {
  it('--help of trace and verify show an example', () => {
    for (const cmd of ['trace', 'verify']) {
      const r = dsv3([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Examples:\\n\\s+\\$ dsv3 ${cmd}`));
    }
  });

  it('records the forward in execution order with shapes from the config; --filter keeps one layer', () => {
    const out = join(tmp, 'all.safetensors');
    const r = dsv3(['trace', '--model', V3, '--input', ids, '--out', out, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    const names: string[] = j.tensors.map((t: { name: string }) => t.name);
    expect(names[0]).toBe('model.embed_tokens:out');
    expect(names.at(-1)).toBe('lm_head:out');
    expect(names.indexOf('model.layers.0:out')).toBeLessThan(names.indexOf('model.layers.1.input_layernorm:out'));
    const file = readSafetensorsFile(out);
    expect(traceOrderFromMetadata(file.metadata)).toEqual(names);
    // v3 golden config: 6 heads, nope 12 + rope 8 (golden README); B = 2, S = 5; MoE layers 2, 3 with K = 3
    expect(file.tensors.get('model.layers.0.self_attn:q')!.shape).toEqual([2, 5, 6, 20]);
    expect(file.tensors.get('model.layers.2.mlp.gate:indices')!).toMatchObject({ dtype: 'I32', shape: [10, 3] });
    expect(file.tensors.get('lm_head:out')!.shape).toEqual([2, 5, 288]);

    const one = join(tmp, 'l1.safetensors');
    const f = dsv3(['trace', '--model', V3, '--input', ids, '--filter', 'model.layers.1.*', '--out', one]);
    expect(f.code).toBe(0);
    const kept = [...readSafetensorsFile(one).tensors.keys()];
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.every((n) => n.startsWith('model.layers.1.') || n.startsWith('model.layers.1:'))).toBe(true);
  });

  it('--grads records grad.<weight> for every weight (bias gradient zero) and the loss', () => {
    const out = join(tmp, 'grads.safetensors');
    const r = dsv3(['trace', '--model', V3, '--input', ids, '--grads', '--filter', 'grad.*', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.loss).toBeGreaterThan(0);
    const file = readSafetensorsFile(out);
    const weights = readSafetensorsFile(join(V3, 'model.safetensors'));
    expect([...file.tensors.keys()].sort()).toEqual([...weights.tensors.keys()].map((n) => `grad.${n}`).sort());
    const bias = file.tensors.get('grad.model.layers.2.mlp.gate.e_score_correction_bias')!;
    expect(new Float32Array(bias.bytes.slice().buffer).every((v) => v === 0)).toBe(true);
  });

  it('verify of a trace against itself passes, in both attention paths against the naive trace', () => {
    const out = join(tmp, 'naive.safetensors');
    expect(dsv3(['trace', '--model', V3, '--input', ids, '--out', out]).code).toBe(0);
    const same = dsv3(['verify', '--model', V3, '--input', ids, '--reference', out, '--json']);
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout).failed).toBe(0);
    // the absorbed path computes the same function; it has no kv_b_proj:out, reported as not produced
    const abs = dsv3(['verify', '--model', V3, '--input', ids, '--reference', out, '--attn', 'absorb', '--json']);
    const j = JSON.parse(abs.stdout);
    expect(j.failed).toBe(0);
    expect(j.missingInLibrary.every((n: string) => n.endsWith('.kv_b_proj:out'))).toBe(true);
    expect(abs.code).toBe(0);
  });

  it('input errors exit 2 with one line: bad ids, id out of range, missing model, bad --attn/--dtype', () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '[[1, 2], [3]]');
    const big = join(tmp, 'big.json');
    writeFileSync(big, '[[1, 2, 288]]');
    const cases = [
      ['trace', '--model', V3, '--input', bad, '--out', join(tmp, 'x.st')],
      ['trace', '--model', V3, '--input', big, '--out', join(tmp, 'x.st')],
      ['trace', '--model', join(tmp, 'nope'), '--input', ids, '--out', join(tmp, 'x.st')],
      ['trace', '--model', V3, '--input', ids, '--out', join(tmp, 'x.st'), '--attn', 'flash'],
      ['trace', '--model', V3, '--input', ids, '--out', join(tmp, 'x.st'), '--dtype', 'bf16'],
      ['trace', '--model', V3, '--input', ids],
      ['verify', '--model', V3, '--input', ids, '--reference', join(tmp, 'missing.safetensors')],
    ];
    for (const args of cases) {
      const r = dsv3(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^dsv3 ${args[0]}: error: `));
    }
  });
});
