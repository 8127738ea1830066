/**
 * Subprocess tests of the issue-13 flags: `dsv3 train --lora GLOB --lora-rank R` (writes a PEFT adapter directory
 * that loads back; the base is untouched) and `--topk K` on forward, generate and train (same numbers as the
 * library's `{ topk }`; a k' that does not fit the kept groups is a one-line input error, exit 2).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tensorToFloat64, tensorToInt32 } from '../../src/io/safetensors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { loadLoraAdapter } from '../../src/model/adapters/lora_node.js';
import { DeepSeekV3 } from '../../src/model/model.js';
import { tiny } from '../../src/model/presets.js';
import { initWeights } from '../../src/model/weights.js';
import { saveModel } from '../../src/model/weights_node.js';
import { ensureBuilt, MAIN, ROOT, type CliRun } from './helpers.js';

beforeAll(ensureBuilt, 180_000);

const tmp = mkdtempSync(join(tmpdir(), 'dsv3-features-'));

function cli(args: string[]): CliRun {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[]): CliRun {
  const r = cli(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/** Exit 2 and one line `dsv3 <cmd>: error: …` on stderr; returns the line. */
function usageError(args: string[]): string {
  const r = cli(args);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^dsv3 ${args[0]}: error: \\S`));
  return lines[0]!;
}

describe('dsv3 train --lora', () => {
  it('trains only the adapter and writes it in the PEFT layout; it loads back over the same base', () => {
    const out = join(tmp, 'lora');
    const r = ok(['train', '--preset', 'tiny', '--steps', '3', '--batch', '2', '--seq', '16', '--lr', '1e-2', '--lora', '*.self_attn.q_b_proj', '--lora', '*.self_attn.o_proj', '--lora-rank', '4', '--lora-alpha', '8', '--out', out, '--json']);
    const summary = JSON.parse(r.stdout) as { lora: { r: number; alpha: number; modules: string[] }; final: { total: number } };
    const blocks = tiny.numHiddenLayers + tiny.numNextnPredictLayers;
    expect(summary.lora).toMatchObject({ r: 4, alpha: 8 });
    expect(summary.lora.modules).toHaveLength(2 * blocks);
    expect(Number.isFinite(summary.final.total)).toBe(true);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number; target_modules: string[] };
    expect([cfg.r, cfg.lora_alpha]).toEqual([4, 8]);
    expect(cfg.target_modules).toEqual(summary.lora.modules);
    // the CLI's base: the tiny preset, seed 0, f32
    const adapter = loadLoraAdapter(out, initWeights(tiny, { seed: 0, dtype: 'float32' }));
    expect(adapter.params.size).toBe(4 * blocks);
    // B starts at 0; three AdamW steps moved it
    const B = adapter.factors('model.layers.1.self_attn.o_proj').B.data;
    expect(B.some((x) => x !== 0)).toBe(true);
  }, 120_000);

  it('--lora-dropout: trains with seeded dropout on the LoRA input; --resume continues the mask stream bit-identically', () => {
    const base = ['train', '--preset', 'tiny', '--batch', '1', '--seq', '8', '--lora', '*.self_attn.o_proj', '--lora-rank', '2', '--lora-dropout', '0.2', '--json'];
    const straight = join(tmp, 'drop-straight');
    const ckpt = join(tmp, 'drop-ckpt');
    const s = JSON.parse(ok([...base, '--steps', '4', '--out', straight, '--checkpoint-dir', ckpt, '--checkpoint-every', '2']).stdout) as { history: { main: number }[] };
    const resumed = join(tmp, 'drop-resumed');
    const r = JSON.parse(ok([...base, '--steps', '4', '--resume', join(ckpt, 'step-000002.safetensors'), '--out', resumed]).stdout) as { history: { main: number }[] };
    expect(r.history.map((h) => h.main)).toEqual(s.history.slice(2).map((h) => h.main));
    expect(readFileSync(join(resumed, 'adapter_model.safetensors'))).toEqual(readFileSync(join(straight, 'adapter_model.safetensors')));
    expect((JSON.parse(readFileSync(join(straight, 'adapter_config.json'), 'utf8')) as { lora_dropout: number }).lora_dropout).toBe(0.2);
  }, 120_000);

  it('flag errors are one-line input errors', () => {
    expect(usageError(['train', '--preset', 'tiny', '--steps', '1', '--lora-rank', '4'])).toMatch(/--lora-rank, --lora-alpha and --lora-dropout need --lora GLOB/);
    expect(usageError(['train', '--preset', 'tiny', '--steps', '1', '--lora', '*.nothing'])).toMatch(/glob '\*\.nothing' matches no Linear module/);
    expect(usageError(['train', '--preset', 'tiny', '--steps', '1', '--lora', 'lm_head', '--lora-rank', '0'])).toMatch(/--lora-rank must be a positive integer/);
  }, 60_000);
});

describe('--topk', () => {
  const modelDir = join(tmp, 'tiny64');
  const weights = initWeights(tiny, { seed: 5, dtype: 'float64' });
  saveModel(modelDir, tiny, weights, { dtype: 'F64' });
  const model = new DeepSeekV3(tiny, weights);
  const ids = [[72, 101, 108, 108, 111, 32, 119]];
  const input = join(tmp, 'ids.json');
  writeFileSync(input, JSON.stringify(ids));

  it("dsv3 forward --topk 6: routing [N, 6] and logits equal to forward({ topk: 6 })", () => {
    const out = join(tmp, 'fwd.safetensors');
    ok(['forward', '--model', modelDir, '--input', input, '--dtype', 'f64', '--topk', '6', '--out', out]);
    const file = readSafetensorsFile(out);
    const ref = model.forward(ids, { topk: 6 });
    expect(file.tensors.get('routing.1.indices')!.shape).toEqual([7, 6]);
    expect(Array.from(tensorToInt32(file.tensors.get('routing.1.indices')!))).toEqual(Array.from(ref.routing.get(1)!.indices));
    expect(Array.from(tensorToFloat64(file.tensors.get('logits')!))).toEqual(Array.from(ref.logits.data));
  }, 60_000);

  it('dsv3 generate --topk 8 --topk-group 3 equals generate({ topk: 8, topkGroup: 3 }); k\' beyond the kept groups exits 2', () => {
    const r = ok(['generate', '--model', modelDir, '--dtype', 'f64', '--prompt-ids', '1,2,3', '--max-new-tokens', '5', '--topk', '8', '--topk-group', '3', '--json']);
    expect((JSON.parse(r.stdout) as { tokens: number[] }).tokens).toEqual(model.generate([1, 2, 3], { maxNewTokens: 5, topk: 8, topkGroup: 3 }).tokens);
    // tiny: 16 experts in 4 groups, topk_group 2 → at most 8
    expect(usageError(['generate', '--model', modelDir, '--prompt-ids', '1,2,3', '--topk', '9'])).toMatch(/topk 9 does not fit in 2 kept group\(s\) .*at most 8/);
    expect(usageError(['forward', '--model', modelDir, '--input', input, '--topk', '9', '--out', join(tmp, 'x.safetensors')])).toMatch(/at most 8/);
  }, 60_000);

  it('dsv3 train --topk 2 changes the training step (vs the config\'s 4); --topk 9 exits 2', () => {
    const run = (extra: string[]): number => (JSON.parse(ok(['train', '--preset', 'tiny', '--steps', '1', '--batch', '1', '--seq', '8', '--json', ...extra]).stdout) as { final: { main: number } }).final.main;
    const k2 = run(['--topk', '2']);
    const plain = run([]);
    expect(Number.isFinite(k2)).toBe(true);
    expect(k2).not.toBe(plain);
    expect(run(['--topk', '4'])).toBe(plain); // k' = K is the config itself
    expect(usageError(['train', '--preset', 'tiny', '--steps', '1', '--topk', '9'])).toMatch(/--topk: topk 9 does not fit/);
  }, 60_000);
});
