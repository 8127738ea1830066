/**
 * `dsv3 forward`, `dsv3 grad` and `dsv3 generate` through their commander registrations (fresh Command with
 * exitOverride; the subprocess tests of the CLI main live in tests/cli). Outputs are checked against the
 * golden tensors of the v3 case (tolerances as in golden.test.ts) and bad inputs against their InputErrors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { registerForwardCommand } from '../../src/cli/commands/forward.js';
import { registerGenerateCommand } from '../../src/cli/commands/generate.js';
import { registerGradCommand } from '../../src/cli/commands/grad.js';
import { InputError } from '../../src/errors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { tensorToFloat64, tensorToInt32 } from '../../src/io/safetensors.js';
import { expectClose } from '../helpers/close.js';
import { GOLDEN_DIR, loadGoldenCase } from '../helpers/golden.js';

const MODEL = join(GOLDEN_DIR, 'v3');
const tmp = mkdtempSync(join(tmpdir(), 'dsv3-model-cli-'));

async function run(args: string[]): Promise<void> {
  const program = new Command('dsv3').exitOverride();
  registerForwardCommand(program);
  registerGradCommand(program);
  registerGenerateCommand(program);
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(args, { from: 'user' });
}

let stdout: string[];
beforeEach(() => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (stdout.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

const golden = loadGoldenCase('v3', 'float64');
const B = golden.meta.batch as number;
const T = golden.meta.seq_len as number;
const inputIds = tensorToInt32(golden.expected.get('input_ids')!);
const targets = tensorToInt32(golden.expected.get('targets')!);
const rows = Array.from({ length: B }, (_, b) => Array.from(inputIds.subarray(b * T, (b + 1) * T)));

function idsFile(name: string, ids: unknown): string {
  const p = join(tmp, name);
  writeFileSync(p, JSON.stringify(ids));
  return p;
}

describe('dsv3 forward', () => {
  it('writes logits, hidden.{i}, final_hidden and routing.{i}.* matching the goldens (f32, absorb)', async () => {
    const out = join(tmp, 'fwd.safetensors');
    await run(['forward', '--model', MODEL, '--input', idsFile('ids.json', rows), '--attn', 'absorb', '--out', out]);
    const t = readSafetensorsFile(out).tensors;
    expect(t.get('logits')!.dtype).toBe('F32');
    expect(t.get('logits')!.shape).toEqual([B, T, golden.config.vocabSize]);
    const ref = (n: string) => tensorToFloat64(golden.expected.get(n)!);
    expectClose(tensorToFloat64(t.get('logits')!), ref('logits.absorb'), 'logits', { atolOfMax: 2e-5 });
    expectClose(tensorToFloat64(t.get('final_hidden')!), ref('hidden.final_norm'), 'final_hidden', { atolOfMax: 2e-5 });
    const size = B * T * golden.config.hiddenSize;
    for (let l = 0; l < golden.config.numHiddenLayers; l++) {
      expectClose(tensorToFloat64(t.get(`hidden.${l}`)!), ref('hidden.layers').subarray(l * size, (l + 1) * size), `hidden.${l}`, { atolOfMax: 2e-5 });
    }
    for (const l of golden.meta.moe_layers as number[]) {
      const idx = t.get(`routing.${l}.indices`)!;
      expect(idx.dtype).toBe('I32');
      expect(idx.shape).toEqual([B * T, golden.config.numExpertsPerTok]);
      expect(Array.from(tensorToInt32(idx))).toEqual(Array.from(tensorToInt32(golden.expected.get(`moe.${l}.topk_idx`)!)));
      expectClose(tensorToFloat64(t.get(`routing.${l}.weights`)!), ref(`moe.${l}.topk_weight`), `routing.${l}.weights`, { atolOfMax: 2e-5 });
    }
  });

  it('rejects out-of-range ids (naming row and position) and ragged batches with an InputError', async () => {
    const out = join(tmp, 'bad.safetensors');
    const bad = rows.map((r) => [...r]);
    bad[1]![3] = golden.config.vocabSize;
    await expect(run(['forward', '--model', MODEL, '--input', idsFile('bad.json', bad), '--out', out])).rejects.toThrow(/batch row 1, position 3/);
    await expect(run(['forward', '--model', MODEL, '--input', idsFile('ragged.json', [[1, 2], [3]]), '--out', out])).rejects.toThrow(InputError);
    await expect(run(['forward', '--model', MODEL, '--input', idsFile('ok.json', rows), '--attn', 'flash', '--out', out])).rejects.toThrow(/--attn/);
  });
});

describe('dsv3 grad', () => {
  it('writes loss and grad.<name> equal to the f64 goldens (ids [B, T+1] = input_ids + last target)', async () => {
    const out = join(tmp, 'grad.safetensors');
    const train = rows.map((r, b) => [...r, targets[b * T + T - 1]!]);
    await run(['grad', '--model', MODEL, '--input', idsFile('train.json', train), '--dtype', 'f64', '--out', out]);
    const t = readSafetensorsFile(out).tensors;
    expect(t.get('loss')!.shape).toEqual([]);
    const loss = tensorToFloat64(t.get('loss')!)[0]!;
    const lossRef = tensorToFloat64(golden.expected.get('loss')!)[0]!;
    expect(Math.abs(loss - lossRef) / lossRef).toBeLessThan(1e-10);
    const names = [...golden.expected.keys()].filter((k) => k.startsWith('grad.'));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expectClose(tensorToFloat64(t.get(n)!), tensorToFloat64(golden.expected.get(n)!), n, { atolOfMax: 1e-10 });
    expect(stdout.join('')).toMatch(/^loss /);
  });

  it('needs at least two ids per row', async () => {
    await expect(run(['grad', '--model', MODEL, '--input', idsFile('one.json', [[1], [2]]), '--out', join(tmp, 'x.st')])).rejects.toThrow(InputError);
  });
});

describe('dsv3 generate', () => {
  it('greedy and speculative MTP decoding of the tiny preset print the same tokens', async () => {
    await run(['generate', '--preset', 'tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '6', '--json']);
    const plain = JSON.parse(stdout.join('')) as { tokens: number[]; acceptanceRate: number | null };
    stdout = [];
    await run(['generate', '--preset', 'tiny', '--prompt-ids', '[1, 2, 3]', '--max-new-tokens', '6', '--speculative', 'mtp', '--json']);
    const spec = JSON.parse(stdout.join('')) as { tokens: number[]; acceptanceRate: number | null };
    expect(plain.tokens.length).toBe(6);
    expect(spec.tokens).toEqual(plain.tokens);
    expect(spec.acceptanceRate).not.toBeNull();
  });

  it('rejects bad prompt ids and conflicting sources', async () => {
    await expect(run(['generate', '--preset', 'tiny', '--prompt-ids', '1,x'])).rejects.toThrow(InputError);
    await expect(run(['generate', '--preset', 'tiny', '--prompt-ids', '1,999'])).rejects.toThrow(/position 1/);
    await expect(run(['generate', '--prompt-ids', '1'])).rejects.toThrow(/exactly one of --model/);
  });
});
