/**
 * Central finite differences for the f64 gradient checks: f is evaluated with one parameter element
 * moved by +h and by −h, and the element is put back. Each test states its own h, sampling and criterion.
 */
import type { FloatArray } from '../../src/tensor.js';

/** [f(θ + h·e_i), f(θ − h·e_i)], evaluated in that order; `param[i]` is restored afterwards. */
export function evalPlusMinus<T>(f: () => T, param: FloatArray, i: number, h: number): [T, T] {
  const old = param[i]!;
  param[i] = old + h;
  const plus = f();
  param[i] = old - h;
  const minus = f();
  param[i] = old;
  return [plus, minus];
}

/** (f(θ + h·e_i) − f(θ − h·e_i)) / 2h: truncation error O(h²·f'''), rounding O(ε·|f|/h). */
export function centralDifference(f: () => number, param: FloatArray, i: number, h: number): number {
  const [plus, minus] = evalPlusMinus(f, param, i, h);
  return (plus - minus) / (2 * h);
}

/** ⟨a, b⟩ = Σ_i a[i]·b[i]: with a random `a`, turns a vector output b into a scalar loss for the check. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
