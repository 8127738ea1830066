/**
 * Layout helpers of MLA: strided 4-D views over flat arrays, the copies between token-major [B, S, H, w] (projections,
 * caches, traces) and head-major [B, H, S, w] (the batched matmuls), and the positions of rows.
 */
import { allocate, dtypeOf, type FloatArray } from '../../tensor.js';

/** A strided 4-D view: element (b, h, s, j) is at off + b·sb + h·sh + s·ss + j. */
export interface View {
  data: FloatArray;
  off: number;
  sb: number;
  sh: number;
  ss: number;
}

/** dst(b,h,s,0:w) (+)= src(b,h,s,0:w) for b<B, h<H, s<S: every layout change of MLA. */
export function copyBlocks(src: View, dst: View, B: number, H: number, S: number, w: number, add = false): void {
  const a = src.data;
  const c = dst.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const i = src.off + b * src.sb + h * src.sh + s * src.ss;
        const o = dst.off + b * dst.sb + h * dst.sh + s * dst.ss;
        if (add) for (let j = 0; j < w; j++) c[o + j] = c[o + j]! + a[i + j]!;
        else for (let j = 0; j < w; j++) c[o + j] = a[i + j]!;
      }
    }
  }
}

/** View of [B, H, S, width] (head-major) at column `off`. */
export function headMajor(data: FloatArray, off: number, width: number, H: number, S: number): View {
  return { data, off, sb: H * S * width, sh: S * width, ss: width };
}

/**
 * View of [B, Tcap, H, width] (token-major, the layout of projections and caches) at column
 * `off`; H = 0 makes a head-broadcast view of [B, Tcap, width].
 */
export function tokenMajor(data: FloatArray, off: number, width: number, H: number, Tcap: number): View {
  const row = Math.max(H, 1) * width;
  return { data, off, sb: Tcap * row, sh: H === 0 ? 0 : width, ss: row };
}

/** Transposes head-major [B, H, S, w] into token-major [B, S, H, w] for a trace. */
export function toTokenMajor(x: FloatArray, B: number, H: number, S: number, w: number): FloatArray {
  const y = allocate(dtypeOf(x), B * H * S * w);
  copyBlocks(headMajor(x, 0, w, H, S), tokenMajor(y, 0, w, H, S), B, H, S, w);
  return y;
}

/** Positions of rows laid out [B, H, S] (or [B, S] with H = 1): p = startPos + s. */
export function positions(B: number, H: number, S: number, startPos: number): Int32Array {
  const pos = new Int32Array(B * H * S);
  for (let r = 0; r < B * H; r++) for (let s = 0; s < S; s++) pos[r * S + s] = startPos + s;
  return pos;
}
