/**
 * RMSNorm (SPEC §3.2): y = w ⊙ x · r with r = 1/sqrt(mean(x²) + eps), over the last axis.
 * Thin, shape-checked wrappers over the `rmsnormForward/Backward` kernels.
 */
import { ShapeError } from '../errors.js';
import { kernelsFor } from '../kernels/index.js';
import { allocate, dtypeOf, type FloatArray } from '../tensor.js';

function checkShapes(where: string, x: FloatArray, w: FloatArray, rows: number, cols: number): void {
  if (x.length !== rows * cols) throw new ShapeError(`${where}: x has ${x.length} elements, expected rows·cols = ${rows}·${cols}`);
  if (w.length !== cols) throw new ShapeError(`${where}: weight has ${w.length} elements, expected cols = ${cols}`);
  if (dtypeOf(x) !== dtypeOf(w)) throw new ShapeError(`${where}: x is ${dtypeOf(x)} but the weight is ${dtypeOf(w)}`);
}

/**
 * Forward of RMSNorm over `rows` vectors of width `cols`.
 * x: [rows, cols], w: [cols] → y: [rows, cols]; saves `rstd` [rows] (= r per row) for the backward.
 */
export function rmsnormForward(
  x: FloatArray,
  w: FloatArray,
  rows: number,
  cols: number,
  eps: number,
): { y: FloatArray; rstd: FloatArray } {
  checkShapes('rmsnormForward', x, w, rows, cols);
  const dtype = dtypeOf(x);
  const y = allocate(dtype, rows * cols);
  const rstd = allocate(dtype, rows);
  kernelsFor(dtype).rmsnormForward(x, w, y, rstd, rows, cols, eps);
  return { y, rstd };
}

/**
 * Backward of RMSNorm: ACCUMULATES dx [rows, cols] and dw [cols] from dy [rows, cols], using
 * the forward's input x and its saved rstd.
 * dx_i = r·w_i·dy_i − r³/cols · x_i · Σ_j dy_j w_j x_j;  dw_j = Σ_rows dy_j · x_j · r.
 */
export function rmsnormBackward(
  x: FloatArray,
  w: FloatArray,
  rstd: FloatArray,
  dy: FloatArray,
  dx: FloatArray,
  dw: FloatArray,
  rows: number,
  cols: number,
): void {
  checkShapes('rmsnormBackward', x, w, rows, cols);
  if (rstd.length !== rows) throw new ShapeError(`rmsnormBackward: rstd has ${rstd.length} elements, expected rows = ${rows}`);
  if (dy.length !== rows * cols || dx.length !== rows * cols) {
    throw new ShapeError(`rmsnormBackward: dy/dx have ${dy.length}/${dx.length} elements, expected ${rows * cols}`);
  }
  if (dw.length !== cols) throw new ShapeError(`rmsnormBackward: dw has ${dw.length} elements, expected ${cols}`);
  kernelsFor(dtypeOf(x)).rmsnormBackward(x, w, rstd, dy, dx, dw, rows, cols);
}
