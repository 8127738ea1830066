/**
 * The examples run as users run them: `node examples/quickstart.mjs` against the built package
 * (the example imports `deepseek-v3-ref`, which Node resolves to this package's dist/ through its
 * `exports`). The README shows the same code, so the README's API example is the one that runs here.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parameterSpecs } from '../../src/model/weights.js';
import { getPreset } from '../../src/model/presets.js';
import { ensureBuilt, ROOT } from '../cli/helpers.js';

beforeAll(ensureBuilt, 180_000);

interface ExampleRun {
  code: number;
  stdout: string;
  stderr: string;
}

function runExample(file: string): ExampleRun {
  const r = spawnSync(process.execPath, [join(ROOT, 'examples', file)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The example's code without its leading comment block (what the README shows). */
function exampleBody(file: string): string {
  const lines = readFileSync(join(ROOT, 'examples', file), 'utf8').split('\n');
  let i = 0;
  while (i < lines.length && (lines[i]!.startsWith('//') || lines[i]!.trim() === '')) i++;
  return lines.slice(i).join('\n').trim();
}

describe('examples/quickstart.mjs', () => {
  let run: ExampleRun;
  beforeAll(() => {
    run = runExample('quickstart.mjs'); // after ensureBuilt (file-level beforeAll runs first)
  });
  const tiny = getPreset('tiny');

  it('exits 0 with nothing on stderr', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('prints logits [B, T, vocab] for the 8-token prompt', () => {
    expect(run.stdout).toContain(`logits [1, 8, ${tiny.vocabSize}]`);
  });

  it('routes token 0 to K distinct experts in [0, E)', () => {
    const m = /layer 1 experts of token 0: ([\d, ]+)\n/.exec(run.stdout);
    expect(m).not.toBeNull();
    const experts = m![1]!.split(', ').map(Number);
    expect(experts).toHaveLength(tiny.numExpertsPerTok);
    expect(new Set(experts).size).toBe(tiny.numExpertsPerTok);
    for (const e of experts) expect(e >= 0 && e < tiny.nRoutedExperts).toBe(true);
  });

  it('prints loss parts whose sum is the total, a main CE near ln(vocab) at init, and one gradient per parameter', () => {
    const m = /loss main ([\d.]+) mtp ([\d.]+) balance ([\d.e+-]+) total ([\d.]+)/.exec(run.stdout);
    expect(m).not.toBeNull();
    const [main, mtp, balance, total] = m!.slice(1).map(Number) as [number, number, number, number];
    // printed with 4 decimals: the parts add up to the total within the rounding of three printed values
    expect(Math.abs(main + mtp + balance - total)).toBeLessThan(2e-4);
    // std-0.006 init gives near-uniform logits: CE ≈ ln(256) = 5.545
    expect(Math.abs(main - Math.log(tiny.vocabSize))).toBeLessThan(0.05);
    // the MTP loss is λ·L¹ with λ = 0.3 and L¹ ≈ ln(256)·(T−1)/T (paper normalisation by T = 8)
    expect(Math.abs(mtp - 0.3 * Math.log(tiny.vocabSize) * (7 / 8))).toBeLessThan(0.05);
    expect(run.stdout).toContain(`gradients: ${parameterSpecs(tiny).length} tensors`);
  });

  it('f32 absorbed attention matches the f64 naive oracle: every compared tensor passes, none diverges', () => {
    expect(run.stdout).toMatch(/All \d+ compared tensors pass\./);
    expect(run.stdout).toContain('first divergent tensor: none');
  });

  it('is the code the README shows', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(exampleBody('quickstart.mjs'));
  });
});

describe('examples/train_tiny.mjs', () => {
  let run: ExampleRun;
  let steps: { step: number; total: number; main: number; mtp: number; lr: number; maxOverMean: number }[];
  beforeAll(() => {
    run = runExample('train_tiny.mjs');
    steps = [...run.stdout.matchAll(/step (\d+) loss ([\d.]+) \(main ([\d.]+), mtp ([\d.]+)\) lr ([\d.e+-]+) \|g\| ([\d.]+) max\/mean load ([\d.]+)/g)].map((m) => ({
    step: Number(m[1]),
    total: Number(m[2]),
    main: Number(m[3]),
    mtp: Number(m[4]),
    lr: Number(m[5]),
    maxOverMean: Number(m[7]),
    }));
  });

  it('exits 0 with nothing on stderr and says which f32 kernels ran', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^f32 kernels: wasm-(relaxed-)?simd\n/);
  });

  it('reports steps 1, 10, 20, 30 with the scheduled lr, and the loss falls', () => {
    expect(steps.map((s) => s.step)).toEqual([1, 10, 20, 30]);
    // warmup: step 1 of 5 gives peak/5; afterwards the cosine stays within [min, peak]
    expect(steps[0]!.lr).toBeCloseTo(3e-3 / 5, 6);
    for (const s of steps.slice(1)) expect(s.lr >= 3e-4 && s.lr <= 3e-3).toBe(true);
    // at init the main CE is ≈ ln 256 = 5.55; 30 steps on byte-level text learn at least the byte frequencies
    expect(Math.abs(steps[0]!.main - Math.log(256))).toBeLessThan(0.1);
    expect(steps[3]!.main).toBeLessThan(steps[0]!.main - 1);
    for (const s of steps) expect(s.maxOverMean >= 1 && Number.isFinite(s.maxOverMean)).toBe(true);
  });

  it('bias balancing (γ = 0.01) lowers the max/mean expert load between steps 10 and 30', () => {
    expect(steps[3]!.maxOverMean).toBeLessThan(steps[1]!.maxOverMean);
  });

  it('moves the router bias both ways (overloaded experts down, underloaded up)', () => {
    const m = /router bias after 30 steps: min (-?[\d.]+) max (-?[\d.]+)/.exec(run.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(0);
    expect(Number(m![2])).toBeGreaterThan(0);
  });
});
