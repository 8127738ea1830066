/**
 * `dsv3 train` in-process: JSON summary, MTP on/off, checkpoints and a bit-identical resume, input errors;
 * and as a subprocess through dist/cli/main.js.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTrainCommand } from '../../src/cli/commands/train.js';
import { dsv3, ensureBuilt } from '../cli/helpers.js';
import { runCommand } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dsv3-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SMALL = ['--preset', 'tiny', '--batch', '2', '--seq', '16', '--lr', '3e-3', '--warmup', '2'];

interface Summary {
  steps: { from: number; to: number };
  tokens: number;
  final: { step: number; main: number; mtp: number; balance: number; maxOverMean: number[] };
  history: { step: number; main: number; mtp: number; lr: number }[];
  checkpoints: string[];
  out: string | null;
}

async function train(args: string[]): Promise<Summary> {
  const r = await runCommand(registerTrainCommand, ['train', ...SMALL, ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Summary;
}

describe('dsv3 train', () => {
  it('trains with MTP and bias balancing and reports every step', async () => {
    const s = await train(['--steps', '5']);
    expect(s.steps).toEqual({ from: 0, to: 5 });
    expect(s.tokens).toBe(5 * 2 * 16);
    expect(s.history.map((h) => h.step)).toEqual([1, 2, 3, 4, 5]);
    expect(s.final.mtp).toBeGreaterThan(0);
    expect(s.final.balance).toBeGreaterThan(0);
    expect(s.final.maxOverMean.length).toBe(3); // layers 1, 2 and the MTP block
    // warmup 2 steps to 3e-3, then cosine down to 3e-4 at step 5
    expect(s.history[0]!.lr).toBeCloseTo(1.5e-3, 12);
    expect(s.history[1]!.lr).toBeCloseTo(3e-3, 12);
    expect(s.history[4]!.lr).toBeCloseTo(3e-4, 12);
  });

  it('--no-mtp trains without the MTP loss; the main loss of step 1 is the same', async () => {
    const on = await train(['--steps', '1']);
    const off = await train(['--steps', '1', '--no-mtp']);
    expect(off.final.mtp).toBe(0);
    expect(off.history[0]!.main).toBe(on.history[0]!.main);
  });

  it('resuming from a checkpoint gives bit-identical weights and losses', async () => {
    const a = join(dir, 'a');
    const straight = await train(['--steps', '6', '--checkpoint-dir', join(a, 'ckpt'), '--checkpoint-every', '3', '--out', join(a, 'model')]);
    expect(straight.checkpoints).toEqual([join(a, 'ckpt', 'step-000003.safetensors'), join(a, 'ckpt', 'step-000006.safetensors')]);
    const b = join(dir, 'b');
    const resumed = await train(['--steps', '6', '--resume', straight.checkpoints[0]!, '--out', join(b, 'model')]);
    expect(resumed.steps).toEqual({ from: 3, to: 6 });
    expect(resumed.history.map((h) => h.main)).toEqual(straight.history.slice(3).map((h) => h.main));
    expect(Buffer.compare(readFileSync(join(a, 'model', 'model.safetensors')), readFileSync(join(b, 'model', 'model.safetensors')))).toBe(0);
  });

  it('trains on a token file and on a text file', async () => {
    const ids = join(dir, 'ids.json');
    writeFileSync(ids, JSON.stringify([Array.from({ length: 40 }, (_, i) => (i * 37) % 256)]));
    expect((await train(['--steps', '2', '--tokens', ids])).history.length).toBe(2);
    const text = join(dir, 'text.txt');
    writeFileSync(text, 'abcabcabc '.repeat(10));
    expect((await train(['--steps', '2', '--data', text, '--order', 'sequential'])).history.length).toBe(2);
  });

  it('input errors exit 2 with one line naming the problem', async () => {
    const ids = join(dir, 'big.json');
    writeFileSync(ids, JSON.stringify(Array.from({ length: 40 }, (_, i) => (i === 17 ? 300 : 1))));
    const cases: [string[], RegExp][] = [
      [['--tokens', ids], /token 300 at position 17 .* vocab \[0, 256\)/],
      [['--tokens', ids, '--data', ids], /at most one of --data FILE and --tokens/],
      [['--checkpoint-every', '2'], /--checkpoint-every needs --checkpoint-dir/],
      [['--seq', '600'], /--seq 600 needs 601 positions; the model has 512/],
      [['--preset', 'nope'], /unknown preset "nope"/],
      [['--backend', 'gpu'], /--backend must be js or wasm/],
      [['--data', join(dir, 'missing.txt')], /missing\.txt: no such file/],
    ];
    for (const [args, msg] of cases) {
      const r = await runCommand(registerTrainCommand, ['train', ...SMALL, '--steps', '1', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr.trim().split('\n').length).toBe(1);
    }
  });
});

describe('dsv3 train as a subprocess', () => {
  it(
    'runs through dist/cli/main.js',
    async () => {
      await ensureBuilt();
      const r = dsv3(['train', ...SMALL, '--steps', '2', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as Summary).history.length).toBe(2);
    },
  );
});
