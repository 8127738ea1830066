import { ShapeError } from './errors.js';

/** Floating-point precisions the numeric core supports. f64 makes this library an oracle for f32 backends. */
export type DType = 'float32' | 'float64';

/** The storage of a tensor: row-major, contiguous. */
export type FloatArray = Float32Array | Float64Array;

/** Number of elements of a shape; `[]` is a scalar (1 element). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Serves the f32 allocations of a scope (see {@link withFloat32Allocator}); must return zero-filled arrays. */
export type Float32Allocator = (n: number) => Float32Array;

// The allocator of the innermost active withFloat32Allocator scope (null: ordinary arrays). Set only for the dynamic
// extent of a call, like the backend choice it belongs to.
let float32Allocator: Float32Allocator | null = null;

/** Allocates a zero-filled array of the given precision (f32: from the active scope's allocator, if any). */
export function allocate(dtype: DType, n: number): FloatArray {
  if (dtype === 'float32') return float32Allocator !== null ? float32Allocator(n) : new Float32Array(n);
  return new Float64Array(n);
}

/**
 * Runs `fn` with every f32 {@link allocate} served by `alloc` (null: ordinary arrays, e.g. for a cache built inside a
 * scope that must outlive it), then restores the previous allocator, also when `fn` throws.
 */
export function withFloat32Allocator<R>(alloc: Float32Allocator | null, fn: () => R): R {
  const prev = float32Allocator;
  float32Allocator = alloc;
  try {
    return fn();
  } finally {
    float32Allocator = prev;
  }
}

/** The precision of a storage array. */
export function dtypeOf(data: FloatArray): DType {
  return data instanceof Float32Array ? 'float32' : 'float64';
}

/**
 * A dense, row-major tensor: a shape and a contiguous `Float32Array` or `Float64Array`.
 * Deliberately minimal: ops are plain functions over `data` with explicit dimensions.
 */
export class Tensor<T extends FloatArray = FloatArray> {
  readonly shape: readonly number[];
  readonly data: T;

  constructor(shape: readonly number[], data: T) {
    const n = numel(shape);
    if (data.length !== n) {
      throw new ShapeError(`shape [${shape.join(', ')}] needs ${n} elements, data has ${data.length}`);
    }
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return new Tensor(shape, allocate(dtype, numel(shape)));
  }

  /** A tensor of the given precision holding `values` (copied, rounded to f32 if needed). */
  static from(shape: readonly number[], values: ArrayLike<number>, dtype: DType = 'float32'): Tensor {
    const data = allocate(dtype, values.length);
    data.set(values as ArrayLike<number>);
    return new Tensor(shape, data);
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  get size(): number {
    return this.data.length;
  }

  /** Same data, new shape with the same element count (no copy). */
  reshape(shape: readonly number[]): Tensor<T> {
    return new Tensor(shape, this.data);
  }

  /** A deep copy, optionally converted to another precision. */
  clone(dtype: DType = this.dtype): Tensor {
    const data = allocate(dtype, this.size);
    data.set(this.data);
    return new Tensor(this.shape, data);
  }
}
