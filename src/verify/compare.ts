import { InputError } from '../errors.js';
import { globToRegExp } from './glob.js';
import { gradsHint, namingHint } from './hints.js';
import { officialToHfName, ropeDeinterleave, ROPE_LAYOUT_GLOBS } from './names.js';
import { canonicalRouting, type RoutingMargin } from './routing_sets.js';
import { gridFromTrace } from './rows.js';

/**
 * Tensor-by-tensor comparison of a library trace against a reference dump, the way kernel
 * authors compare (FlashMLA `tests/lib.py`): inf/nan positions must agree exactly, an element
 * passes on absolute OR relative error, and a global cosine check runs on top. Results come in
 * execution order and the first failing tensor is named (`firstDivergent`).
 * Browser-safe: works on in-memory collections (see `readSafetensorsFile` for files).
 */

/** Storage a compared tensor may have (safetensors readers return one of these per dtype). */
export type ComparableData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | readonly number[];

/**
 * One named tensor: shape, storage and optionally the safetensors dtype (`F32`, `I64`, …) or the
 * library dtype (`float32`); `data` holds the values as numbers (see `collectionFromSafetensors`).
 * Integer dtypes (indices) are compared exactly.
 */
export interface ComparableTensor {
  dtype?: string;
  shape: readonly number[];
  data: ComparableData;
}

/** A named-tensor collection, e.g. the Map a safetensors reader or a `TraceRecorder` returns. */
export type TensorCollection = ReadonlyMap<string, ComparableTensor>;

/** Tolerances of one tensor: an element passes when |a−b| ≤ atol OR |a−b| ≤ rtol·|ref|. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

/** A per-pattern tolerance rule; the first rule whose glob matches the (library) name wins. */
export interface ToleranceRule extends Tolerance {
  pattern: string;
}

/**
 * Default tolerances, chosen for a float32 implementation compared with a float32 or float64
 * reference on small models (noise between correct f32 computations there is ≤ 1e-6 of the
 * tensor's scale, golden README): rtol 1e-3, atol 1e-5, cosine difference ≤ 1e-6 (FlashMLA's
 * `1 − 2Σab/Σ(a²+b²)`; ≈ half the squared relative L2 error). Loosen for bf16 backends.
 */
export const DEFAULT_TOLERANCE: Readonly<Tolerance> = Object.freeze({ rtol: 1e-3, atol: 1e-5 });

/** Default bound on the FlashMLA cosine difference `1 − 2Σab/Σ(a²+b²)`. */
export const DEFAULT_COS_DIFF_TOL = 1e-6;

/** Options of {@link compareTraces}. */
export interface CompareOptions {
  /** Default tolerance for tensors no rule matches (default {@link DEFAULT_TOLERANCE}). */
  tolerance?: Partial<Tolerance>;
  /** Per-pattern tolerances, first match wins, matched against the library (HF) name. */
  rules?: readonly ToleranceRule[];
  /** Bound on the cosine difference (default {@link DEFAULT_COS_DIFF_TOL}). */
  cosDiffTol?: number;
  /**
   * Execution order (library names). Default: the order of the library collection, then any
   * reference-only names in the reference's order.
   */
  order?: readonly string[];
  /** Map reference names from the official-code names to HF names first (SPEC §2.4). */
  officialNames?: boolean;
  /**
   * The reference holds RoPE vectors (`:q_pe`, `:k_pe`) in the HF de-interleaved layout:
   * apply P to the library tensor's last axis before comparing (SPEC §3.4).
   */
  hfRope?: boolean;
  /** Globs selecting the tensors `hfRope` permutes (default {@link ROPE_LAYOUT_GLOBS}). */
  ropeGlobs?: readonly string[];
  /**
   * Compare `gate:indices` / `gate:weights` in their stored order. Default false: per row as sets, sorted by
   * expert id with the weights carried along (a different order is a note, not a failure).
   */
  orderedRouting?: boolean;
}

/** Outcome of one tensor. `missing-*`: present on one side only (not counted as a failure). */
export type ComparisonStatus = 'pass' | 'fail' | 'missing-in-reference' | 'missing-in-library';

/** Everything measured about one tensor. Errors are over finite, position-matched elements. */
export interface TensorComparison {
  /** Library (HF) name. */
  name: string;
  /** Name in the reference file (differs with `officialNames`). */
  referenceName: string;
  status: ComparisonStatus;
  /** Human-readable reasons for a failure (empty when passing). */
  reasons: string[];
  shape: readonly number[] | null;
  referenceShape: readonly number[] | null;
  dtype: string | null;
  referenceDtype: string | null;
  shapeMatch: boolean;
  /** Both float or both integer (F32 vs F64 is allowed and agrees). */
  dtypeMatch: boolean;
  /** Compared exactly (both integer). */
  exact: boolean;
  /** The HF RoPE permutation was applied to the library tensor. */
  ropePermuted: boolean;
  /**
   * The reference had another shape with the same element count and the same last dim (leading dims merged or
   * split, e.g. [B·S, d] for [B, S, d]) and was compared in the library's shape.
   */
  reshaped: boolean;
  /** Remarks that are not failures (a reshape, a different routing order, near-ties). */
  notes: string[];
  /** The noise-calibrated measurements ({@link CalibratedStats}); null in tolerance mode or when not measured. */
  calibrated: CalibratedStats | null;
  rtol: number;
  atol: number;
  numel: number;
  maxAbsError: number;
  /** max |a−b|/|ref| (∞ where ref is 0 and a ≠ 0). */
  maxRelError: number;
  /** Multi-index of the largest |a−b| (ties: first), or null when nothing differs. */
  worstIndex: number[] | null;
  worstValue: number | null;
  worstReference: number | null;
  /** Elements failing abs-OR-rel (plus non-finite mismatches). */
  failCount: number;
  /** Fraction of elements within tolerance. */
  passFraction: number;
  /** Standard cosine similarity Σab/(‖a‖‖b‖) over finite positions (1 when both are zero). */
  cosine: number;
  /** FlashMLA cosine difference 1 − 2Σab/Σ(a²+b²) (0 when both are zero). */
  cosDiff: number;
  /** Positions of +inf, −inf and nan agree exactly. */
  nonfiniteMatch: boolean;
  nonfiniteMismatchCount: number;
  /** Multi-index of the first non-finite mismatch, or null. */
  firstNonfiniteMismatch: number[] | null;
}

/**
 * A tensor in the noise-calibrated mode: per token row, the RMS distance from the truth (the library in f64) of
 * the backend and of the library's own emulation at the backend's precision (the noise). The floor of a row is
 * max(noise, half a bf16 ulp of the truth row's RMS). `ratio` is the largest of the median-row, worst-row and
 * global (√cosine-difference) ratios; the tensor passes when `ratio ≤ k`.
 */
export interface CalibratedStats {
  /** Median over compared rows of the backend's per-row RMS distance from the truth. */
  backendMedian: number;
  backendWorst: number;
  /** Token row of the worst backend row ([b, s], [n], or [] for a single-row tensor). */
  worstRow: number[];
  /** The same for the profile run (the noise), before the floor. */
  noiseMedian: number;
  noiseWorst: number;
  /** Median and worst of the per-row floors max(noise, bf16 half-ulp of the truth row RMS). */
  floorMedian: number;
  floorWorst: number;
  /** Cosine differences (= ‖a−b‖²/(‖a‖²+‖b‖²)) of backend vs truth, and of noise vs truth floored likewise. */
  backendCosDiff: number;
  floorCosDiff: number;
  ratioMedian: number;
  ratioWorst: number;
  /** √(backendCosDiff / floorCosDiff): the same scale as the RMS ratios. */
  ratioCos: number;
  ratio: number;
  rows: number;
  /** Rows left out because a routing near-tie upstream ran a different expert for them. */
  rowsExcluded: number;
  /** No profile tensor of this name: the floor is the bf16 half-ulp alone. */
  noNoise: boolean;
}

/** A token whose expert set differs from the exact run's within the router's decision noise. */
export interface NearTie {
  /** The `gate:indices` tensor (library name). */
  name: string;
  /** Which run chose the other set. */
  side: 'reference' | 'profile';
  /** Token row n = b·S + s of the router tensor, and [b, s]. */
  row: number;
  token: [number, number];
  /** The exact run's decision margins (biased-score units). */
  margins: RoutingMargin;
  /** Noise of the biased scores at that token: max over experts of |profile − exact| (floored at a bf16 half-ulp). */
  noise: number;
  /** Experts chosen by the exact run and by the other side (sorted). */
  exact: number[];
  other: number[];
}

/** The whole comparison, in execution order. */
export interface ComparisonResult {
  /** `tolerance`: fixed rtol/atol/cosine bounds; `calibrated`: bounds from the profile's observed noise. */
  mode: 'tolerance' | 'calibrated';
  results: TensorComparison[];
  /** Name of the first failing tensor in execution order, or null. */
  firstDivergent: string | null;
  passed: number;
  failed: number;
  /** Library tensors the reference lacks (not compared). */
  missingInReference: string[];
  /** Reference tensors the library did not produce (not compared; check the names). */
  missingInLibrary: string[];
  /** At least one tensor compared and none failed. */
  allPassed: boolean;
  /** Likely causes of a failure outside the numbers (gradients dumped, other naming). */
  hints: string[];
  /** Remarks on the whole run (reshapes, routing order, rows left out). */
  notes: string[];
  /** Near-tie tokens (calibrated mode). */
  nearTies: NearTie[];
  /** The settings used, for the report. */
  settings: {
    tolerance: Tolerance;
    rules: ToleranceRule[];
    cosDiffTol: number;
    officialNames: boolean;
    hfRope: boolean;
    orderedRouting: boolean;
    /** Calibrated mode: the profile and the factor k. */
    numerics: string | null;
    k: number | null;
  };
}

const INT_DTYPE = /^(I|U)\d+$|^BOOL$|^int\d+$|^uint\d+$/;

/** True when the tensor holds integers (indices, ids): compared exactly. */
export function isIntegerTensor(t: ComparableTensor): boolean {
  if (t.dtype !== undefined) return INT_DTYPE.test(t.dtype);
  return !(t.data instanceof Float32Array || t.data instanceof Float64Array || Array.isArray(t.data));
}

export function describeDtype(t: ComparableTensor): string {
  if (t.dtype !== undefined) return t.dtype;
  const ctor = (t.data as object).constructor.name;
  return ctor === 'Array' ? 'number[]' : ctor;
}

/** The tensor's values as numbers (64-bit integers converted; F8 refused). */
export function tensorValues(t: ComparableTensor, name = '?'): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d, Number);
  if (t.dtype !== undefined && /^(F8|BF16$|F16$)/.test(t.dtype) && !(d instanceof Float32Array || d instanceof Float64Array)) {
    throw new InputError(`tensor '${name}': raw ${t.dtype} bits are not comparable; decode to numbers first (collectionFromSafetensors does)`);
  }
  return d as ArrayLike<number>;
}

/** Row-major multi-index of a flat index. */
export function unravelIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  let r = flat;
  for (let k = shape.length - 1; k >= 0; k--) {
    const n = shape[k]!;
    idx[k] = n === 0 ? 0 : r % n;
    r = n === 0 ? 0 : Math.floor(r / n);
  }
  return idx;
}

function shapeProduct(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Same element count and same last dim: the leading dims are merged or split ([B·S, d] vs [B, S, d]). */
export function reshapeCompatible(got: readonly number[], ref: readonly number[]): boolean {
  if (got.length === 0 || ref.length === 0) return false;
  return shapeProduct(got) === shapeProduct(ref) && got[got.length - 1] === ref[ref.length - 1];
}

/** The note of a reshaped comparison. */
export function reshapeNote(got: readonly number[], ref: readonly number[]): string {
  return `reference [${ref.join(', ')}] compared as [${got.join(', ')}] (same elements and last dim; leading dims merged or split)`;
}

/** The tolerance of a (library) name: first matching rule, else the default. */
export function toleranceFor(name: string, rules: readonly ToleranceRule[], fallback: Tolerance): Tolerance {
  for (const r of rules) if (globToRegExp(r.pattern).test(name)) return { rtol: r.rtol, atol: r.atol };
  return fallback;
}

export function emptyComparison(name: string, referenceName: string, status: ComparisonStatus, tol: Tolerance): TensorComparison {
  return {
    name,
    referenceName,
    status,
    reasons: [],
    shape: null,
    referenceShape: null,
    dtype: null,
    referenceDtype: null,
    shapeMatch: false,
    dtypeMatch: false,
    exact: false,
    ropePermuted: false,
    reshaped: false,
    notes: [],
    calibrated: null,
    rtol: tol.rtol,
    atol: tol.atol,
    numel: 0,
    maxAbsError: 0,
    maxRelError: 0,
    worstIndex: null,
    worstValue: null,
    worstReference: null,
    failCount: 0,
    passFraction: 0,
    cosine: 1,
    cosDiff: 0,
    nonfiniteMatch: true,
    nonfiniteMismatchCount: 0,
    firstNonfiniteMismatch: null,
  };
}

/** Per-tensor options of {@link compareTensor}. */
export interface TensorCompareOptions extends Partial<Tolerance> {
  cosDiffTol?: number;
  /** Apply the HF RoPE permutation P to `got`'s last axis first. */
  ropePermute?: boolean;
  referenceName?: string;
}

/**
 * Compares one library tensor with its reference. Float tensors: inf/nan positions must agree
 * exactly; each finite element passes when |a−b| ≤ atol or |a−b| ≤ rtol·|ref|; the tensor also
 * needs cosDiff ≤ cosDiffTol. Integer tensors (both sides): every element equal.
 */
export function compareTensor(name: string, got: ComparableTensor, ref: ComparableTensor, opts: TensorCompareOptions = {}): TensorComparison {
  const tol: Tolerance = { rtol: opts.rtol ?? DEFAULT_TOLERANCE.rtol, atol: opts.atol ?? DEFAULT_TOLERANCE.atol };
  const cosDiffTol = opts.cosDiffTol ?? DEFAULT_COS_DIFF_TOL;
  const c = emptyComparison(name, opts.referenceName ?? name, 'pass', tol);
  c.shape = [...got.shape];
  c.referenceShape = [...ref.shape];
  c.dtype = describeDtype(got);
  c.referenceDtype = describeDtype(ref);
  const gotInt = isIntegerTensor(got);
  const refInt = isIntegerTensor(ref);
  c.dtypeMatch = gotInt === refInt;
  c.exact = gotInt && refInt;
  c.shapeMatch = got.shape.length === ref.shape.length && got.shape.every((d, i) => d === ref.shape[i]);
  c.numel = shapeProduct(ref.shape);
  if (!c.shapeMatch) {
    if (!reshapeCompatible(got.shape, ref.shape)) {
      c.status = 'fail';
      c.reasons.push(`shape [${got.shape.join(', ')}] vs reference [${ref.shape.join(', ')}]`);
      return c;
    }
    c.reshaped = true;
    c.notes.push(reshapeNote(got.shape, ref.shape));
  }
  if (!c.dtypeMatch) {
    c.status = 'fail';
    c.reasons.push(`dtype ${c.dtype} vs reference ${c.referenceDtype} (integer vs float)`);
    return c;
  }
  let a = tensorValues(got, name);
  const b = tensorValues(ref, c.referenceName);
  if (a.length !== c.numel || b.length !== c.numel) {
    throw new InputError(`tensor '${name}': data length ${a.length}/${b.length} does not match shape [${ref.shape.join(', ')}]`);
  }
  const shape = got.shape; // indices refer to the library's shape (the same as the reference's unless reshaped)
  if (opts.ropePermute) {
    a = ropeDeinterleave(a, got.shape);
    c.ropePermuted = true;
  }
  const rtol = c.exact ? 0 : tol.rtol;
  const atol = c.exact ? 0 : tol.atol;
  // Cosine sums run on values divided by the largest finite |value| (no overflow/underflow).
  let scale = 0;
  for (let i = 0; i < c.numel; i++) {
    const x = Math.abs(a[i]!);
    const y = Math.abs(b[i]!);
    if (x > scale && x !== Infinity) scale = x;
    if (y > scale && y !== Infinity) scale = y;
  }
  if (scale === 0) scale = 1;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let worst = -1;
  let worstErr = -1;
  for (let i = 0; i < c.numel; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      // Non-finite values must sit at the same positions with the same value (nan ↔ nan).
      const same = x === y || (Number.isNaN(x) && Number.isNaN(y));
      if (!same) {
        c.nonfiniteMismatchCount++;
        c.failCount++;
        if (c.firstNonfiniteMismatch === null) c.firstNonfiniteMismatch = unravelIndex(i, shape);
        if (worstErr < Infinity) {
          worstErr = Infinity;
          worst = i;
        }
      }
      continue;
    }
    const err = Math.abs(x - y);
    const ay = Math.abs(y);
    if (err > c.maxAbsError) c.maxAbsError = err;
    const rel = err === 0 ? 0 : ay === 0 ? Infinity : err / ay;
    if (rel > c.maxRelError) c.maxRelError = rel;
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
    // FlashMLA: an element passes on absolute OR relative error.
    if (!(err <= atol || err <= rtol * ay)) c.failCount++;
    const xs = x / scale;
    const ys = y / scale;
    dot += xs * ys;
    aa += xs * xs;
    bb += ys * ys;
  }
  c.nonfiniteMatch = c.nonfiniteMismatchCount === 0;
  c.passFraction = c.numel === 0 ? 1 : (c.numel - c.failCount) / c.numel;
  c.cosine = aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : Math.min(1, Math.max(-1, dot / (Math.sqrt(aa) * Math.sqrt(bb))));
  c.cosDiff = aa + bb === 0 ? 0 : 1 - (2 * dot) / (aa + bb);
  if (worst >= 0 && worstErr > 0) {
    c.worstIndex = unravelIndex(worst, shape);
    c.worstValue = a[worst]!;
    c.worstReference = b[worst]!;
  }
  if (!c.nonfiniteMatch) {
    c.reasons.push(`inf/nan positions differ at ${c.nonfiniteMismatchCount} element(s), first [${c.firstNonfiniteMismatch!.join(', ')}]`);
  }
  const finiteFails = c.failCount - c.nonfiniteMismatchCount;
  if (finiteFails > 0) {
    c.reasons.push(
      c.exact
        ? `${finiteFails} of ${c.numel} values differ (compared exactly)`
        : `${finiteFails} of ${c.numel} elements outside atol=${atol} and rtol=${rtol}`,
    );
  }
  if (!c.exact && c.cosDiff > cosDiffTol) c.reasons.push(`cosine difference ${c.cosDiff.toExponential(3)} > ${cosDiffTol}`);
  c.status = c.reasons.length === 0 ? 'pass' : 'fail';
  return c;
}

/** Reference tensors keyed by library (HF) name; two reference names mapping to one library name is an InputError. */
export function referenceByLibraryName(reference: TensorCollection, officialNames: boolean): Map<string, { refName: string; t: ComparableTensor }> {
  const refByName = new Map<string, { refName: string; t: ComparableTensor }>();
  for (const [refName, t] of reference) {
    const name = officialNames ? officialToHfName(refName) : refName;
    if (refByName.has(name)) {
      throw new InputError(`reference tensors '${refByName.get(name)!.refName}' and '${refName}' both map to '${name}'`);
    }
    refByName.set(name, { refName, t });
  }
  return refByName;
}

/** Execution order: `order` first, then the library's names, then reference-only names. */
export function executionOrder(order: readonly string[] | undefined, ...names: Iterable<string>[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const list of [order ?? [], ...names]) {
    for (const n of list) {
      if (!seen.has(n)) {
        seen.add(n);
        out.push(n);
      }
    }
  }
  return out;
}

/** Routing pairs of both sides sorted by expert id (set comparison); notes per `gate:indices` whose order differed. */
export function routingAsSets(
  library: TensorCollection,
  refByName: Map<string, { refName: string; t: ComparableTensor }>,
): { library: Map<string, ComparableTensor>; refByName: Map<string, { refName: string; t: ComparableTensor }>; notes: Map<string, string> } {
  const lib = canonicalRouting(library);
  const refColl = new Map([...refByName].map(([n, v]) => [n, v.t]));
  const ref = canonicalRouting(refColl);
  const outRef = new Map([...refByName].map(([n, v]) => [n, { refName: v.refName, t: ref.collection.get(n)! }]));
  const notes = new Map<string, string>();
  for (const [name, refRows] of ref.reordered) {
    const libRows = lib.reordered.get(name);
    if (libRows === undefined) continue;
    const lt = library.get(name)!;
    const rt = refByName.get(name)!.t;
    const differ = orderDifferences(tensorValues(lt, name), tensorValues(rt, name), lt.shape, rt.shape);
    if (differ > 0) notes.set(name, `expert order differs in ${differ} of ${lt.shape[0]} rows: compared as sets, weights carried along (--ordered-routing for the strict check)`);
    else if (refRows > 0 || libRows > 0) notes.set(name, 'compared as sets (sorted by expert id), weights carried along');
  }
  return { library: lib.collection, refByName: outRef, notes };
}

/** Rows of two [N, K] index tensors that hold the same experts in another order. */
function orderDifferences(a: ArrayLike<number>, b: ArrayLike<number>, sa: readonly number[], sb: readonly number[]): number {
  if (sa.length !== 2 || sa[0] !== sb[0] || sa[1] !== sb[1]) return 0;
  const [N, K] = sa as [number, number];
  let n = 0;
  for (let t = 0; t < N; t++) {
    let ordered = true;
    for (let k = 0; k < K; k++) if (a[t * K + k] !== b[t * K + k]) ordered = false;
    if (ordered) continue;
    const x = Array.from({ length: K }, (_, k) => a[t * K + k]!).sort((p, q) => p - q);
    const y = Array.from({ length: K }, (_, k) => b[t * K + k]!).sort((p, q) => p - q);
    if (x.every((v, k) => v === y[k])) n++;
  }
  return n;
}

/** Rows of two sorted [N, K] index tensors whose expert sets differ. */
export function setDifferences(a: ArrayLike<number>, b: ArrayLike<number>, N: number, K: number): number[] {
  const rows: number[] = [];
  for (let t = 0; t < N; t++) {
    for (let k = 0; k < K; k++) {
      if (a[t * K + k] !== b[t * K + k]) {
        rows.push(t);
        break;
      }
    }
  }
  return rows;
}

/** The counts, first divergence, hints and settings around a list of per-tensor results. */
export function finishResult(
  mode: ComparisonResult['mode'],
  results: TensorComparison[],
  library: TensorCollection,
  referenceNames: readonly string[],
  settings: ComparisonResult['settings'],
  extra: { notes?: string[]; nearTies?: NearTie[] } = {},
): ComparisonResult {
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const missingInLibrary = results.filter((r) => r.status === 'missing-in-library').map((r) => r.referenceName);
  const hints: string[] = [];
  const naming = namingHint(referenceNames, missingInLibrary.length, settings.officialNames);
  if (naming !== null) hints.push(naming);
  const grid = gridFromTrace(library.keys(), (n) => library.get(n)?.shape);
  const grads = gradsHint(results, referenceNames, [...library.keys()].some((n) => n.startsWith('grad.')), grid);
  if (grads !== null) hints.push(grads);
  const reshaped = results.filter((r) => r.reshaped).length;
  const notes = [...(extra.notes ?? [])];
  if (reshaped > 0) notes.unshift(`${reshaped} reference tensor(s) compared after a reshape (same elements and last dim): see their notes.`);
  return {
    mode,
    results,
    firstDivergent: results.find((r) => r.status === 'fail')?.name ?? null,
    passed,
    failed,
    missingInReference: results.filter((r) => r.status === 'missing-in-reference').map((r) => r.name),
    missingInLibrary,
    allPassed: passed > 0 && failed === 0,
    hints,
    notes,
    nearTies: extra.nearTies ?? [],
    settings,
  };
}

/**
 * Compares a library collection with a reference collection, tensor by tensor, in execution
 * order. Reference names are mapped with {@link officialToHfName} when `officialNames` is set.
 * Routing (`gate:indices`, `gate:weights`) is compared per row as a set unless `orderedRouting`.
 */
export function compareTraces(library: TensorCollection, reference: TensorCollection, opts: CompareOptions = {}): ComparisonResult {
  const tolerance: Tolerance = {
    rtol: opts.tolerance?.rtol ?? DEFAULT_TOLERANCE.rtol,
    atol: opts.tolerance?.atol ?? DEFAULT_TOLERANCE.atol,
  };
  const rules = [...(opts.rules ?? [])];
  const cosDiffTol = opts.cosDiffTol ?? DEFAULT_COS_DIFF_TOL;
  const ropeRes = (opts.ropeGlobs ?? ROPE_LAYOUT_GLOBS).map(globToRegExp);
  const orderedRouting = opts.orderedRouting === true;
  let refByName = referenceByLibraryName(reference, opts.officialNames === true);
  let lib: TensorCollection = library;
  let routingNotes = new Map<string, string>();
  if (!orderedRouting) ({ library: lib, refByName, notes: routingNotes } = routingAsSets(library, refByName));
  const order = executionOrder(opts.order, library.keys(), refByName.keys());

  const results: TensorComparison[] = [];
  for (const name of order) {
    const got = lib.get(name);
    const ref = refByName.get(name);
    const tol = toleranceFor(name, rules, tolerance);
    if (got === undefined && ref === undefined) continue; // named in `order` only
    if (got === undefined) {
      results.push(emptyComparison(name, ref!.refName, 'missing-in-library', tol));
    } else if (ref === undefined) {
      results.push(emptyComparison(name, name, 'missing-in-reference', tol));
    } else {
      const ropePermute = opts.hfRope === true && ropeRes.some((re) => re.test(name));
      const c = compareTensor(name, got, ref.t, { ...tol, cosDiffTol, ropePermute, referenceName: ref.refName });
      const note = routingNotes.get(name);
      if (note !== undefined) {
        c.notes.push(note);
        if (c.status === 'fail' && c.exact && c.shapeMatch) {
          const [N, K] = got.shape as [number, number];
          const rows = setDifferences(tensorValues(got, name), tensorValues(ref.t, name), N, K);
          c.reasons = c.reasons.map((r) => (/values differ/.test(r) ? `${rows.length} of ${N} rows select a different expert set (first: row ${rows[0]})` : r));
        }
      }
      results.push(c);
    }
  }
  return finishResult('tolerance', results, library, [...reference.keys()], {
    tolerance,
    rules,
    cosDiffTol,
    officialNames: opts.officialNames === true,
    hfRope: opts.hfRope === true,
    orderedRouting,
    numerics: null,
    k: null,
  });
}

/**
 * Parses a per-pattern tolerance flag `glob=rtol,atol` (e.g. `model.layers.*:attn_probs=1e-3,1e-6`).
 * Throws an `InputError` naming the flag on a malformed value.
 */
export function parseToleranceRule(spec: string): ToleranceRule {
  const eq = spec.lastIndexOf('=');
  const bad = (why: string): never => {
    throw new InputError(`tolerance '${spec}': ${why} (expected 'glob=rtol,atol', e.g. 'model.layers.*:attn_probs=1e-3,1e-6')`);
  };
  if (eq <= 0) bad('no glob before =');
  const parts = spec.slice(eq + 1).split(',');
  if (parts.length !== 2) bad('need two numbers after =');
  const [rtol, atol] = parts.map((p) => Number(p.trim())) as [number, number];
  if (!(rtol >= 0) || !(atol >= 0) || parts.some((p) => p.trim() === '')) bad('rtol and atol must be non-negative numbers');
  return { pattern: spec.slice(0, eq), rtol, atol };
}
