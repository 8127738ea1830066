/**
 * Routing compared as sets. A router's top-k is a set of experts: `torch.topk(..., sorted=False)` (transformers'
 * router) returns the same set in another order, and the MoE output does not depend on that order. So
 * `gate:indices` is compared per row after sorting the experts by id, and `gate:weights` after the same
 * permutation (each side sorted by its own indices, so every weight stays with its expert).
 *
 * Near-ties: a token whose expert set differs only because the router's own decision margin is within the
 * precision noise (k-th vs (k+1)-th biased score ŝ = s + b, or the topk_group-th vs the next group score) is
 * not a bug: a backend at another precision can legitimately choose the other expert. {@link routingMargins}
 * computes those margins from the exact run's scores, as the official `Gate.forward` decides (SPEC §3.8).
 */
import type { ComparableTensor, TensorCollection } from './compare.js';

const INDICES = /\.gate:indices$/;

/** Rows of a [N, K] routing pair sorted by expert id; `reordered` counts rows whose order changed. */
export interface SortedRouting {
  indices: Float64Array;
  weights: Float64Array | null;
  reordered: number;
}

/** Sorts each of the N rows of `indices` [N, K] by expert id, carrying `weights` [N, K] along. */
export function sortRoutingRows(indices: ArrayLike<number>, weights: ArrayLike<number> | null, N: number, K: number): SortedRouting {
  const si = new Float64Array(N * K);
  const sw = weights === null ? null : new Float64Array(N * K);
  const perm = Array.from({ length: K }, (_, k) => k);
  let reordered = 0;
  for (let t = 0; t < N; t++) {
    const o = t * K;
    for (let k = 0; k < K; k++) perm[k] = k;
    perm.sort((a, b) => indices[o + a]! - indices[o + b]! || a - b);
    let moved = false;
    for (let k = 0; k < K; k++) {
      if (perm[k] !== k) moved = true;
      si[o + k] = indices[o + perm[k]!]!;
      if (sw !== null) sw[o + k] = weights![o + perm[k]!]!;
    }
    if (moved) reordered++;
  }
  return { indices: si, weights: sw, reordered };
}

/** A collection's routing pairs sorted by expert id, and per `gate:indices` name the number of reordered rows. */
export interface CanonicalRouting {
  collection: Map<string, ComparableTensor>;
  reordered: Map<string, number>;
}

function asNumbers(t: ComparableTensor): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float64Array.from(d, Number);
  return d as ArrayLike<number>;
}

/**
 * Replaces every `<prefix>.gate:indices` [N, K] of `c` (and its `<prefix>.gate:weights` of the same shape) by
 * the rows sorted by expert id. `rename` maps a collection name to the name it is reported under.
 */
export function canonicalRouting(c: TensorCollection, rename: (name: string) => string = (n) => n): CanonicalRouting {
  const out = new Map<string, ComparableTensor>(c);
  const reordered = new Map<string, number>();
  for (const [name, t] of c) {
    if (!INDICES.test(rename(name)) || t.shape.length !== 2) continue;
    const [N, K] = t.shape as [number, number];
    const wName = name.replace(/:indices$/, ':weights');
    const w = c.get(wName);
    const wOk = w !== undefined && w.shape.length === 2 && w.shape[0] === N && w.shape[1] === K;
    const sorted = sortRoutingRows(asNumbers(t), wOk ? asNumbers(w) : null, N, K);
    out.set(name, { ...(t.dtype !== undefined ? { dtype: t.dtype } : {}), shape: [N, K], data: sorted.indices });
    if (wOk) out.set(wName, { ...(w.dtype !== undefined ? { dtype: w.dtype } : {}), shape: [N, K], data: sorted.weights! });
    reordered.set(rename(name), sorted.reordered);
  }
  return { collection: out, reordered };
}

/** True when rows t of two sorted [N, K] index tensors hold the same experts. */
export function sameExpertSet(a: ArrayLike<number>, b: ArrayLike<number>, t: number, K: number): boolean {
  for (let k = 0; k < K; k++) if (a[t * K + k] !== b[t * K + k]) return false;
  return true;
}

/** The router settings the margins depend on (ModelConfig fields). */
export interface RouterShape {
  nRoutedExperts: number;
  nGroup: number;
  topkGroup: number;
  numExpertsPerTok: number;
}

/** Decision margins of one token (biased-score units). */
export interface RoutingMargin {
  /** ŝ of the K-th chosen expert minus the best unchosen expert of the kept groups (∞ when none is left). */
  expert: number;
  /** topk_group-th group score minus the next one (∞ without group limiting). */
  group: number;
}

/**
 * The margins of one token's routing decision from its biased scores ŝ = s + b (length E), as the official
 * `Gate.forward` decides: group score = sum of the top-2 ŝ of the group with a bias, else the max; keep
 * `topk_group` groups; choose the top-K ŝ among them.
 */
export function routingMargins(sel: ArrayLike<number>, r: RouterShape, hasBias: boolean): RoutingMargin {
  const E = r.nRoutedExperts;
  const G = r.nGroup;
  const per = E / G;
  let allowed = Array.from({ length: E }, (_, e) => e);
  let group = Infinity;
  if (G > 1 && r.topkGroup < G) {
    const gs = Array.from({ length: G }, (_, g) => {
      const v = Array.from({ length: per }, (_, j) => sel[g * per + j]!).sort((a, b) => b - a);
      return hasBias ? v[0]! + (v[1] ?? 0) : v[0]!;
    });
    const order = gs.map((v, g) => [v, g] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    group = order[r.topkGroup - 1]![0] - order[r.topkGroup]![0];
    const kept = new Set(order.slice(0, r.topkGroup).map(([, g]) => g));
    allowed = allowed.filter((e) => kept.has(Math.floor(e / per)));
  }
  const v = allowed.map((e) => sel[e]!).sort((a, b) => b - a);
  const K = r.numExpertsPerTok;
  const expert = v.length > K ? v[K - 1]! - v[K]! : Infinity;
  return { expert, group };
}

/**
 * Whether another expert set is explained by noise of size `tol` on each biased score: every expert of `other`
 * that `exact` lacks scores within 2·tol of the lowest chosen ŝ (two scores each off by up to tol), and, when its
 * group was cut, its group score is within 4·tol of the lowest kept group score (sums of two scores). A set from
 * far outside the boundary — e.g. experts of a masked group picked by a 0 mask — is not a near-tie, however small
 * the token's own margins are.
 */
export function withinDecisionNoise(sel: ArrayLike<number>, r: RouterShape, hasBias: boolean, exact: readonly number[], other: readonly number[], tol: number): boolean {
  const E = r.nRoutedExperts;
  const G = r.nGroup;
  const per = E / G;
  const grouped = G > 1 && r.topkGroup < G;
  const gs = Array.from({ length: G }, (_, g) => {
    const v = Array.from({ length: per }, (_, j) => sel[g * per + j]!).sort((a, b) => b - a);
    return hasBias ? v[0]! + (v[1] ?? 0) : v[0]!;
  });
  const keptGroups = new Set(
    gs
      .map((v, g) => [v, g] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, grouped ? r.topkGroup : G)
      .map(([, g]) => g),
  );
  const gsMin = Math.min(...[...keptGroups].map((g) => gs[g]!));
  const sK = Math.min(...exact.map((e) => sel[e]!));
  for (const e of other) {
    if (exact.includes(e)) continue;
    if (sK - sel[e]! > 2 * tol) return false;
    const g = Math.floor(e / per);
    if (grouped && !keptGroups.has(g) && gsMin - gs[g]! > 4 * tol) return false;
  }
  return true;
}
