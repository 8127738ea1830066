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

function runExample(file: string): { code: number; stdout: string; stderr: string } {
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
  const run = runExample('quickstart.mjs');
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
