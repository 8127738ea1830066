/** Seeded random test data drawn from the library's portable generator (same seed → same values everywhere). */
import { Random } from '../../src/random.js';
import { Tensor, type DType, type FloatArray } from '../../src/tensor.js';

/** A tensor of `shape` and `dtype` filled with N(mean, std²) draws from `rng`, in flat order. */
export function randomTensor(rng: Random, shape: number[], dtype: DType, std: number, mean = 0): Tensor {
  const t = Tensor.zeros(shape, dtype);
  rng.fillNormal(t.data, std, mean);
  return t;
}

/** `n` draws N(0, std²) from a fresh generator seeded with `seed`. */
export function randomArray(n: number, seed: number, dtype: DType, std = 1): FloatArray {
  return randomTensor(new Random(seed), [n], dtype, std).data;
}
