/**
 * Test helpers for the model area. `loadGolden` reads a golden case (config, weights dequantised/widened to
 * the requested precision, expected tensors, meta) — a local stand-in used until tests/helpers/golden.ts lands.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dequantizeBlockFp8 } from '../../src/io/numeric.js';
import { parseSafetensors, tensorToFloat32, toFloatTensor, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { configFromHF, type ModelConfig } from '../../src/model/config.js';
import { Tensor, type DType } from '../../src/tensor.js';

const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

export interface GoldenCase {
  config: ModelConfig;
  weights: Map<string, Tensor>;
  expected: Map<string, SafetensorsTensor>;
  meta: Record<string, unknown>;
}

function readST(path: string): Map<string, SafetensorsTensor> {
  const buf = readFileSync(path);
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path).tensors;
}

/** Loads tests/fixtures/golden/<name> with weights in `dtype` (FP8 weights × weight_scale_inv, BF16 widened). */
export function loadGolden(name: string, dtype: DType): GoldenCase {
  const dir = `${GOLDEN_DIR}${name}/`;
  const config = configFromHF(JSON.parse(readFileSync(`${dir}config.json`, 'utf8')));
  const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as Record<string, unknown>;
  const raw = readST(`${dir}model.safetensors`);
  const weights = new Map<string, Tensor>();
  for (const [n, t] of raw) {
    if (n.endsWith('_scale_inv')) continue;
    if (t.dtype === 'F8_E4M3') {
      const s = raw.get(`${n}_scale_inv`)!;
      const [rows, cols] = t.shape as [number, number];
      weights.set(n, new Tensor(t.shape, dequantizeBlockFp8(t.bytes, tensorToFloat32(s), rows, cols, 128, dtype)));
    } else {
      weights.set(n, toFloatTensor(t, dtype, n));
    }
  }
  return { config, weights, expected: readST(`${dir}expected.safetensors`), meta };
}
