// Shared setup of the model and training benchmarks (not itself a benchmark: run.mjs runs *.bench.* files only):
// the kernel backend with a fallback to js, the `bench` preset model in f32, seeded token ids, and the median.
import { DeepSeekV3, backendInfo, getPreset, initWeights, useBackend } from '../dist/index.js';

/** Activates `backend` ('wasm' or 'js'), falling back to js with a warning; returns backendInfo(). */
export async function selectBackend(backend) {
  try {
    await useBackend(backend);
  } catch (e) {
    console.warn(`backend '${backend}' unavailable (${e.message}); using js`);
    await useBackend('js');
  }
  return backendInfo();
}

/** The `bench` preset with seed-0 f32 weights: `{ config, model }`. */
export function benchModel() {
  const config = getPreset('bench');
  return { config, model: new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float32' })) };
}

/** `n` token ids in [0, vocab) from a 32-bit LCG seeded with `seed` (fixed inputs, no Random needed). */
export function seededIds(n, vocab, seed) {
  let x = seed >>> 0;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) % vocab;
  return ids;
}

/** The median of xs (the upper one for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
