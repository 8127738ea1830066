/**
 * `dsv3 demo` end to end on a short run: exit code, printed summary, report.html (self-contained, with the
 * loss and balance curves and one load heatmap per MoE layer), history, trace and model files.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDemoCommand } from '../../src/cli/commands/demo.js';
import { runDemo } from '../../src/demo/demo.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { loadModel } from '../../src/model/weights_node.js';
import { collectionFromSafetensors } from '../../src/verify/trace.js';
import { dsv3, ensureBuilt } from '../cli/helpers.js';
import { runCommand, type InProcessRun } from './helpers.js';

let dir: string;
let run: InProcessRun;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dsv3-demo-'));
  run = await runCommand(registerDemoCommand, ['demo', '--steps', '12', '--batch', '4', '--seq', '32', '--out', dir]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dsv3 demo (12 steps)', () => {
  it('exits 0 with every self-check passing and says what it did and where the files are', () => {
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toMatch(/step +12\/12 +main \d+\.\d+ +mtp \d+\.\d+ +balance \S+ +\| load max\/mean: L1 [\d.]+ +L2 [\d.]+ +L3 \(MTP 1\) [\d.]+/);
    expect(run.stdout).toContain('corpus unigram entropy 3.197 nats/byte');
    expect(run.stdout).toMatch(/acceptance \d+\.\d% = \d+\/\d+ drafts/);
    for (const name of ['naive vs absorbed attention', 'f64 gradient check', 'trace round trip through verify', 'speculative = greedy']) {
      expect(run.stdout).toContain(`pass  ${name}`);
    }
    expect(run.stdout).not.toContain('FAIL');
    expect(run.stdout).toContain(join(dir, 'report.html'));
  });

  it('writes a self-contained report with the loss curves and a load heatmap per MoE layer', () => {
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<svg /g)?.length).toBe(3 + 3); // loss, balance, max/mean + 3 heatmaps
    expect(html).toContain('main next-token CE');
    expect(html).toContain('MTP CE');
    expect(html).toContain('Sequence-wise balance loss');
    for (const l of ['layer 1', 'layer 2', 'layer 3 (MTP 1)']) expect(html).toContain(`Expert load / mean load, ${l}`);
    // no external assets or scripts: the only URL is the SVG namespace
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:/);
    expect(html).not.toContain('FAIL');
  });

  it('writes the history, a trace that parses back, and a loadable model', () => {
    const history = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as { steps: { step: number; loads: number[][] }[]; layers: string[] };
    expect(history.steps.map((s) => s.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(history.layers).toEqual(['layer 1', 'layer 2', 'layer 3 (MTP 1)']);
    // top-4 of 16 experts over 4×32 tokens: 512 assignments per layer and step
    expect(history.steps[0]!.loads[0]!.reduce((a, b) => a + b, 0)).toBe(4 * 32 * 4);
    const trace = collectionFromSafetensors(readSafetensorsFile(join(dir, 'trace.safetensors')));
    expect(trace.size).toBeGreaterThan(100);
    expect([...trace.keys()].some((n) => n.startsWith('grad.model.layers.1.'))).toBe(true);
    expect(existsSync(join(dir, 'model', 'config.json'))).toBe(true);
    const { config, weights } = loadModel(join(dir, 'model'), { dtype: 'float32' });
    expect(config.hiddenSize).toBe(64);
    expect(weights.size).toBeGreaterThan(100);
  });
});

describe('runDemo', () => {
  it('records every step without hooks, lowers the loss, and rejects bad options', () => {
    const corpus = readFileSync(new URL('../../data/tiny-corpus.txt', import.meta.url));
    const r = runDemo(corpus, { steps: 6, batch: 2, seqLen: 16, sampleTokens: 4 });
    expect(r.history.steps.length).toBe(6);
    expect(r.heldOut.after).toBeLessThan(r.heldOut.before);
    expect(() => runDemo(corpus, { steps: 0 })).toThrow(/steps must be a positive integer/);
    expect(() => runDemo(corpus, { preset: 'bench' })).toThrow(/no MTP module/);
  });
});

describe('dsv3 demo as a subprocess', () => {
  it(
    'runs through dist/cli/main.js with --json',
    async () => {
      await ensureBuilt();
      const out = join(dir, 'sub');
      const r = dsv3(['demo', '--steps', '3', '--batch', '2', '--seq', '16', '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { checks: { passed: boolean }[]; files: { report: string } };
      expect(s.checks.every((c) => c.passed)).toBe(true);
      expect(existsSync(s.files.report)).toBe(true);
    },
  );
});
