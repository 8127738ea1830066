/**
 * The Node model-directory API (issue 12, "Why" 7): options arguments have defaults, dtype is validated at run
 * time, saveModel validates everything before it writes a file, loadModel checks the budget before reading weights.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResourceError } from '../../src/errors.js';
import { readSafetensorsFile } from '../../src/io/safetensors_node.js';
import { loadModel, saveModel } from '../../src/model/weights_node.js';
import type { DType } from '../../src/tensor.js';
import { microConfig, randomWeights } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'dsv3-guards-node-'));
const c = microConfig();

describe('defaults', () => {
  it('saveModel(dir, c, w) stores the compute dtype (F32 / F64); loadModel(dir) loads float32', () => {
    for (const [dtype, st] of [['float32', 'F32'], ['float64', 'F64']] as const) {
      const dir = join(tmp, `plain-${dtype}`);
      const w = randomWeights(c, dtype, 1);
      saveModel(dir, c, w);
      expect(readSafetensorsFile(join(dir, 'model.safetensors')).tensors.get('lm_head.weight')!.dtype).toBe(st);
      const loaded = loadModel(dir);
      expect(loaded.weights.get('lm_head.weight')!.dtype).toBe('float32');
      expect(loaded.warnings).toEqual([]);
    }
  });
});

describe('saveModel validates before writing anything', () => {
  const w = randomWeights(c, 'float32', 2);
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['a compute dtype for the storage dtype', (dir) => saveModel(dir, c, w, { dtype: 'float32' as 'F32' }), /^saveModel: dtype is the storage format, one of 'F32', 'F64', 'BF16', 'F16'/],
    ['weights of another config', (dir) => saveModel(dir, microConfig({ hiddenSize: 8 }), w), /weights do not match the config/],
    ['an invalid config', (dir) => saveModel(dir, { ...c, qkRopeHeadDim: 3 }, w), /qk_rope_head_dim/],
    ['a bad shard size', (dir) => saveModel(dir, c, w, { maxShardBytes: 0 }), /maxShardBytes must be a positive number/],
  ];
  it.each(cases)('%s: throws, and the directory was not created', (what, save, msg) => {
    const dir = join(tmp, what.replace(/\W+/g, '-'));
    expect(() => save(dir)).toThrow(msg);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('loadModel', () => {
  const dir = join(tmp, 'm');
  saveModel(dir, c, randomWeights(c, 'float32', 3));

  it('rejects a dtype outside float32 | float64 with a TypeError, before reading weights', () => {
    expect(() => loadModel(dir, { dtype: 'f64' as DType })).toThrow(new TypeError("loadModel: dtype must be 'float32' or 'float64', got 'f64' ('f64' is the CLI's --dtype spelling)"));
  });

  it('refuses a budget below the weights and the file it reads (ResourceError naming the directory)', () => {
    expect(() => loadModel(dir, { maxBytes: 1000 })).toThrow(ResourceError);
    expect(() => loadModel(dir, { maxBytes: 1000 })).toThrow(new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} needs ~\\d+ kB for weights alone; limit 1 kB`));
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
  });
});
