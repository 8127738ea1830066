/**
 * `--backend` / `--threads` on the model commands: the default is the library's thread count (min(cores, 4) in Node),
 * `--threads 1` runs one thread, the output names the kernels and threads, and the result is the same for any count.
 */
import { availableParallelism } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { dsv3, ensureBuilt } from './helpers.js';

beforeAll(ensureBuilt);

const n = Math.min(availableParallelism(), 4);
const threads = (k: number): string => `${k} thread${k === 1 ? '' : 's'}`;

describe('dsv3 --threads', () => {
  it('generate: default threads, --threads 1 and --threads 3 name their count and give the same tokens', () => {
    const args = ['generate', '--preset', 'tiny', '--prompt-ids', '1,2,3', '--max-new-tokens', '6', '--json'];
    const runs = [[], ['--threads', '1'], ['--threads', '3']].map((extra) => {
      const r = dsv3([...args, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { tokens: number[]; kernels: string };
    });
    expect(runs.map((r) => r.kernels.replace(/^kernels wasm-(relaxed-)?simd, /, ''))).toEqual([threads(n), threads(1), threads(3)]);
    expect(runs[1]!.tokens).toEqual(runs[0]!.tokens);
    expect(runs[2]!.tokens).toEqual(runs[0]!.tokens);
  });

  it('train prints the kernels line with the thread count; --threads with --backend js is a usage error (exit 2, one line)', () => {
    const r = dsv3(['train', '--preset', 'tiny', '--steps', '1', '--batch', '1', '--seq', '8', '--threads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dsv3 train: preset tiny \(float32, kernels wasm-(relaxed-)?simd, 2 threads\)/);
    const bad = dsv3(['generate', '--preset', 'tiny', '--prompt-ids', '1,2', '--backend', 'js', '--threads', '2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--threads 2 needs --backend wasm/);
  });
});
