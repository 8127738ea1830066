import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromFloatArray, fromIntArray, serializeSafetensors } from '../../src/io/safetensors.js';
import { dsv3, ensureBuilt, ROOT } from './helpers.js';

beforeAll(ensureBuilt, 180_000);

const tmp = mkdtempSync(join(tmpdir(), 'dsv3-cli-'));

function writeDump(name: string, tensors: Record<string, { data: number[]; shape: number[]; int?: boolean }>, order?: string[]): string {
  const map = new Map(
    Object.entries(tensors).map(([n, t]) => [n, t.int ? fromIntArray(t.data, t.shape, 'I64') : fromFloatArray(t.data, t.shape, 'F32')]),
  );
  const path = join(tmp, name);
  writeFileSync(path, serializeSafetensors(map, order ? { order: JSON.stringify(order) } : undefined));
  return path;
}

describe('dsv3 (top level)', () => {
  it('--help lists the commands and the exit codes', () => {
    const r = dsv3(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['info', 'diff', 'bench']) expect(r.stdout).toContain(c);
    expect(r.stdout).toContain('Exit codes');
  });
  it('--version prints the package version', () => {
    const r = dsv3(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });
  it('unknown commands and options: one line on stderr, exit 2', () => {
    for (const args of [['frobnicate'], ['info', '--bogus']]) {
      const r = dsv3(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^dsv3( info)?: error: /);
    }
  });
  it.each(['info', 'diff', 'bench'])('%s --help shows an example', (cmd) => {
    const r = dsv3([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Examples?:\\n\\s+\\$ dsv3 ${cmd}`));
  });
});

describe('dsv3 info', () => {
  it('full V3 preset: SPEC §2.3 parameter count and §6.6 cache sizes', () => {
    const r = dsv3(['info', '--preset', 'deepseek-v3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('671,026,419,200'); // SPEC §2.3
    expect(r.stdout).toContain('4,997,120 B'); // SPEC §6.6 naive, BF16
    expect(r.stdout).toContain('70,272 B'); // SPEC §6.6 latent, BF16
    expect(r.stdout).toContain('71.1x');
  });
  it('--json for a model directory (golden v2lite config.json)', () => {
    const r = dsv3(['info', '--model', join(ROOT, 'tests/fixtures/golden/v2lite'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.config.qLoraRank).toBe(0);
    expect(j.config.scoringFunc).toBe('softmax');
    // v2lite: 2 heads × (12+8+20) naive values per layer; 24 + 8 latent (golden README table)
    expect(j.kvCache.naive.valuesPerTokenPerLayer).toBe(2 * (12 + 8 + 20));
    expect(j.kvCache.absorb.valuesPerTokenPerLayer).toBe(24 + 8);
    expect(j.kvCache.absorb.bf16BytesPerToken).toBe(32 * 3 * 2);
    expect(j.parameters.total).toBeGreaterThan(j.parameters.activatedPerToken);
  });
  it('input errors exit 2 with one line: neither/both flags, missing dir, bad preset', () => {
    for (const args of [['info'], ['info', '--preset', 'tiny', '--model', '.'], ['info', '--model', join(tmp, 'nope')], ['info', '--preset', 'nope']]) {
      const r = dsv3(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^dsv3 info: error: /);
    }
  });
});

describe('dsv3 diff', () => {
  const order = ['model.embed_tokens:out', 'model.layers.0.mlp.gate:indices', 'model.layers.0:out', 'lm_head:out'];
  const base = {
    'model.embed_tokens:out': { data: [1, 2, 3, 4], shape: [2, 2] },
    'model.layers.0.mlp.gate:indices': { data: [2, 0], shape: [2, 1], int: true },
    'model.layers.0:out': { data: [0.5, -0.5, 0.25, 8], shape: [2, 2] },
    'lm_head:out': { data: [1, 1], shape: [2] },
  };

  it('identical dumps: exit 0', () => {
    const a = writeDump('a.safetensors', base, order);
    const r = dsv3(['diff', a, a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('All 4 compared tensors pass.');
  });

  it('a mismatch: exit 1, names the first divergent tensor in execution order, writes reports', () => {
    const a = writeDump('a.safetensors', base, order);
    const b = writeDump('b.safetensors', {
      ...base,
      'model.layers.0:out': { data: [0.5, -0.5, 0.3, 8], shape: [2, 2] },
      'lm_head:out': { data: [1, 2], shape: [2] },
    });
    for (const ext of ['json', 'md', 'html']) {
      const rep = join(tmp, `r.${ext}`);
      const r = dsv3(['diff', a, b, '--report', rep]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('First divergent tensor: model.layers.0:out.');
      expect(r.stdout).toMatch(/FAIL model\.layers\.0:out: .*worst \[1, 0\] 0\.25 vs 0\.3/);
      const text = readFileSync(rep, 'utf8');
      expect(text).toContain('model.layers.0:out');
      if (ext === 'json') expect(JSON.parse(text).firstDivergent).toBe('model.layers.0:out');
    }
  });

  it('--json prints the comparison; --tol loosens one pattern', () => {
    const a = writeDump('a.safetensors', base, order);
    const b = writeDump('c.safetensors', { ...base, 'lm_head:out': { data: [1, 1.05], shape: [2] } });
    const r = dsv3(['diff', a, b, '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.firstDivergent).toBe('lm_head:out');
    expect(j.results.map((x: { name: string }) => x.name)).toEqual(order);
    const loose = dsv3(['diff', a, b, '--tol', 'lm_head:*=0.1,0', '--cos-tol', '1e-2']);
    expect(loose.code).toBe(0);
  });

  it('an index mismatch fails exactly even with huge tolerances', () => {
    const a = writeDump('a.safetensors', base, order);
    const b = writeDump('d.safetensors', { ...base, 'model.layers.0.mlp.gate:indices': { data: [2, 1], shape: [2, 1], int: true } });
    const r = dsv3(['diff', a, b, '--rtol', '10', '--atol', '10']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('First divergent tensor: model.layers.0.mlp.gate:indices.');
  });

  it('input errors exit 2: missing file, not safetensors, bad --tol, bad --report extension', () => {
    const a = writeDump('a.safetensors', base, order);
    const junk = join(tmp, 'junk.safetensors');
    writeFileSync(junk, 'not a safetensors file at all');
    const cases = [
      ['diff', a, join(tmp, 'missing.safetensors')],
      ['diff', a, junk],
      ['diff', a, a, '--tol', 'nonsense'],
      ['diff', a, a, '--report', join(tmp, 'r.txt')],
      ['diff', a, a, '--rtol', '-1'],
      ['diff', a],
    ];
    for (const args of cases) {
      const r = dsv3(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^dsv3 diff: error: /);
    }
  });
});
