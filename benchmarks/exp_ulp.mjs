// Error of the wasm four-lane exp (assembly/vmath.ts) over EVERY f32 input, in ulps of the exact value (Math.exp
// in double, ~1e-16 relative, stands for it). Inputs: all f32 in [−104, 89] (below, exp rounds to +0; above, to +∞)
// plus ±0, ±∞, NaN and the two clamp regions' ends. Prints the worst error per binade of the result and overall.
// Not a benchmark (run.mjs skips it): `npm run build && node benchmarks/exp_ulp.mjs [--json]` (about a minute).
import { createWasmKernels } from '../dist/index.js';

const K = await createWasmKernels({ variant: 'simd' });
const CHUNK = 1 << 20;
const bits = new Uint32Array(CHUNK);
const x = new Float32Array(bits.buffer);
const y = new Float32Array(CHUNK);
const e32 = new Float32Array(1);
const e32bits = new Uint32Array(e32.buffer);
const pow2 = (k) => 2 ** k;

let worst = 0;
let worstX = 0;
let count = 0;
let over1 = 0;
const byRange = new Map(); // result binade (log2) → worst ulps
function check(n) {
  K.exp(x, y, n);
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[i]);
    e32[0] = e;
    const E = (e32bits[0] >>> 23) & 0xff;
    if (E === 0xff) {
      // exact value beyond FLT_MAX after rounding: the kernel must give +∞
      if (y[i] !== Infinity) throw new Error(`exp(${x[i]}) = ${y[i]}, expected +Infinity`);
      continue;
    }
    const ulp = E === 0 ? pow2(-149) : pow2(E - 150);
    const err = Math.abs(y[i] - e) / ulp;
    count++;
    if (err > 1) over1++;
    const key = E === 0 ? -127 : E - 127;
    if (err > (byRange.get(key) ?? 0)) byRange.set(key, err);
    if (err > worst) {
      worst = err;
      worstX = x[i];
    }
  }
}
// ascending bit patterns: [+0, 89] then [−0, −104]
const ranges = [
  [0x00000000, 0x42b20000],
  [0x80000000, 0xc2d00000],
];
for (const [lo, hi] of ranges) {
  for (let b = lo; b <= hi; b += CHUNK) {
    const n = Math.min(CHUNK, hi - b + 1);
    for (let i = 0; i < n; i++) bits[i] = b + i;
    check(n);
  }
}
// specials and the clamp regions
const special = [Infinity, -Infinity, NaN, 89, 88.72283935546875, 88.72284, 1000, -103.97, -104, -104.0001, -1000, 3.4e38, -3.4e38];
const sx = Float32Array.from(special);
const sy = new Float32Array(sx.length);
K.exp(sx, sy, sx.length);
for (let i = 0; i < sx.length; i++) {
  const ref = Math.fround(Math.exp(sx[i]));
  const ok = sy[i] === ref || (Number.isNaN(ref) ? Number.isNaN(sy[i]) : Math.abs(sy[i] - ref) <= Math.max(pow2(-149), Math.abs(ref) * 2 ** -23));
  if (!ok) throw new Error(`exp(${sx[i]}) = ${sy[i]}, expected ${ref}`);
}
const result = { inputs: count, worstUlps: worst, worstAt: worstX, above1Ulp: over1, worstUlpsByResultBinade: Object.fromEntries([...byRange].sort((a, b) => a[0] - b[0])) };
if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`wasm exp over ${count} f32 inputs in [−104, 89] (+ specials): worst ${worst.toFixed(4)} ulp at x = ${worstX}; ${over1} inputs above 1 ulp`);
  console.log(`worst ulps by result binade 2^k: ${[...byRange].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}:${v.toFixed(3)}`).join(' ')}`);
}
