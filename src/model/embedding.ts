/**
 * Token embedding (SPEC §3.1): a plain row lookup `h⁰[b,t,:] = E_tok[ids[b,t], :]`, no √d scaling and no
 * positional embedding (positions enter only through RoPE inside attention).
 */
import { InputError } from '../errors.js';
import type { FloatArray } from '../tensor.js';

/**
 * Checks that every id of a [B, T] batch is an integer in [0, vocab); the error names the batch row and
 * position of the first bad id.
 */
export function validateTokenIds(ids: ArrayLike<number>, B: number, T: number, vocab: number): void {
  if (ids.length !== B * T) throw new InputError(`token ids: expected B·T = ${B}·${T} = ${B * T} ids, got ${ids.length}`);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const id = ids[b * T + t]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new InputError(`token id ${id} at batch row ${b}, position ${t} is outside [0, ${vocab})`);
      }
    }
  }
}

/**
 * Flattens a batch given as rows of token ids into an Int32Array [B, T]; ragged rows, empty batches and
 * non-integer ids give an InputError naming the row (and position).
 */
export function flattenTokenBatch(rows: readonly (readonly number[])[]): { ids: Int32Array; B: number; T: number } {
  if (!Array.isArray(rows) || rows.length === 0) throw new InputError('token batch: expected a non-empty array of rows of token ids');
  const B = rows.length;
  const first = rows[0];
  if (!Array.isArray(first)) throw new InputError('token batch: row 0 is not an array of token ids');
  const T = first.length;
  if (T === 0) throw new InputError('token batch: rows must not be empty');
  const ids = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const row = rows[b];
    if (!Array.isArray(row)) throw new InputError(`token batch: row ${b} is not an array of token ids`);
    if (row.length !== T) throw new InputError(`token batch: row ${b} has ${row.length} ids but row 0 has ${T} (ragged batch)`);
    for (let t = 0; t < T; t++) {
      const id = row[t];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < -2147483648 || id > 2147483647) {
        throw new InputError(`token id ${String(id)} at batch row ${b}, position ${t} is not an integer`);
      }
      ids[b * T + t] = id;
    }
  }
  return { ids, B, T };
}

/** out[n,:] = table[ids[n],:] for N ids; table is [vocab, d]. Ids must already be validated. */
export function embeddingForward(table: FloatArray, ids: Int32Array, N: number, d: number): FloatArray {
  const out = new (table.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(N * d);
  for (let n = 0; n < N; n++) out.set(table.subarray(ids[n]! * d, ids[n]! * d + d), n * d);
  return out;
}

/** dtable[ids[n],:] += dout[n,:] (accumulates; repeated ids add up). */
export function embeddingBackward(dtable: FloatArray, ids: Int32Array, dout: FloatArray, N: number, d: number): void {
  for (let n = 0; n < N; n++) {
    const o = ids[n]! * d;
    for (let j = 0; j < d; j++) dtable[o + j] = dtable[o + j]! + dout[n * d + j]!;
  }
}
