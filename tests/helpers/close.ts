/**
 * Per-tensor closeness checks: an element passes when |got − ref| ≤ atol + rtol·|ref|.
 * On failure the message names the tensor, the worst element (flat index), both values and
 * how many elements failed, so a failing golden test says where it went wrong.
 */
export interface CloseOptions {
  /** Absolute tolerance. */
  atol?: number;
  /** Relative tolerance. */
  rtol?: number;
  /** If set, atol = atolOfMax · max|ref| (the golden README's per-tensor convention). */
  atolOfMax?: number;
}

type Numeric = ArrayLike<number>;

export function maxAbs(x: Numeric): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** Returns null when all elements pass, else a description of the failure. */
export function closeReport(got: Numeric, ref: Numeric, name: string, opts: CloseOptions): string | null {
  if (got.length !== ref.length) return `${name}: length ${got.length} != reference length ${ref.length}`;
  const rtol = opts.rtol ?? 0;
  const atol = (opts.atol ?? 0) + (opts.atolOfMax !== undefined ? opts.atolOfMax * maxAbs(ref) : 0);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    const r = ref[i]!;
    const err = Math.abs(g - r);
    const allowed = atol + rtol * Math.abs(r);
    const ok = err <= allowed || (Number.isNaN(g) && Number.isNaN(r)) || g === r;
    if (!ok) {
      bad++;
      const excess = Number.isNaN(err) ? Infinity : err - allowed;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad === 0) return null;
  return (
    `${name}: ${bad}/${ref.length} elements outside atol=${atol.toExponential(2)} rtol=${rtol.toExponential(2)}; ` +
    `worst at flat index ${worst}: got ${got[worst]}, ref ${ref[worst]}, |diff| ${Math.abs(got[worst]! - ref[worst]!).toExponential(3)}`
  );
}

/** Throws (failing the test) with a worst-element report unless got ≈ ref. */
export function expectClose(got: Numeric, ref: Numeric, name: string, opts: CloseOptions): void {
  const report = closeReport(got, ref, name, opts);
  if (report !== null) throw new Error(report);
}
