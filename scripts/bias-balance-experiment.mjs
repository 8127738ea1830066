// Auxiliary-loss-free load balancing on a deliberately skewed router (SPEC §5.2, issue 4 evidence).
//
// A fixed set of random tokens x ~ N(0, 1) + u (u a shared unit direction) is routed through a
// V3-style sigmoid router (16 experts, 4 groups keep 2, top-4, e_score_correction_bias) whose
// weight rows of experts 0, 1, 2, 5 get + c·u, so those experts win for most tokens. Each "step"
// routes the tokens with gateForward and applies b_e += γ·sign(mean − load_e). No weights are
// trained: the bias alone must rebalance the load. Prints max/mean load per step for γ and for
// γ = 0. The same experiment, smaller, is the test tests/moe/bias_balance.test.ts.
//
// Usage (after `npm run build:ts`):
//   node scripts/bias-balance-experiment.mjs [--gamma 0.001] [--steps 500] [--skew 2] [--tokens 2048] [--every 25] [--centred]
import { parseArgs } from 'node:util';
import { gateForward } from '../dist/model/gate.js';
import { Random } from '../dist/random.js';
import { Tensor } from '../dist/tensor.js';
import { loadStats, updateRouterBias } from '../dist/train/bias_update.js';

const { values } = parseArgs({
  options: {
    gamma: { type: 'string', default: '0.001' },
    steps: { type: 'string', default: '500' },
    skew: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '2048' },
    every: { type: 'string', default: '25' },
    seed: { type: 'string', default: '7' },
    centred: { type: 'boolean', default: false },
  },
});
const gamma = Number(values.gamma);
const steps = Number(values.steps);
const skew = Number(values.skew);
const N = Number(values.tokens);
const every = Number(values.every);
const seed = Number(values.seed);

const d = 16;
const E = 16;
const config = {
  hiddenSize: d,
  nRoutedExperts: E,
  numExpertsPerTok: 4,
  nGroup: 4,
  topkGroup: 2,
  scoringFunc: 'sigmoid',
  normTopkProb: true,
  routedScalingFactor: 2.5,
  topkMethod: 'noaux_tc',
};

/** The skewed router and token set (same construction as the test). */
function skewedRouter() {
  const rng = new Random(seed);
  const u = new Float64Array(d);
  rng.fillNormal(u);
  const norm = Math.hypot(...u);
  for (let j = 0; j < d; j++) u[j] /= norm;
  const x = new Float64Array(N * d);
  rng.fillNormal(x);
  for (let t = 0; t < N; t++) for (let j = 0; j < d; j++) x[t * d + j] += u[j];
  const weight = Tensor.zeros([E, d], 'float64');
  rng.fillNormal(weight.data, 1 / Math.sqrt(d));
  for (const e of [0, 1, 2, 5]) for (let j = 0; j < d; j++) weight.data[e * d + j] += skew * u[j];
  return { w: { weight, e_score_correction_bias: Tensor.zeros([E], 'float64') }, x };
}

function run(g) {
  const { w, x } = skewedRouter();
  const traj = [];
  let last;
  for (let s = 0; s <= steps; s++) {
    const { routing } = gateForward(config, w, x, N);
    last = loadStats(routing.load);
    traj.push(last.maxOverMean);
    updateRouterBias(w.e_score_correction_bias, routing.load, g, { centred: values.centred });
  }
  return { traj, last, bias: Array.from(w.e_score_correction_bias.data) };
}

const on = run(gamma);
const off = run(0);
console.log(`skewed router: E=${E}, 4 groups keep 2, top-4, ${N} tokens, skew c=${skew}, centred=${values.centred}`);
console.log('step  max/mean (γ=' + gamma + ')  max/mean (γ=0)');
for (let s = 0; s <= steps; s += every) console.log(`${String(s).padStart(4)}  ${on.traj[s].toFixed(3).padStart(8)}  ${off.traj[s].toFixed(3).padStart(12)}`);
const first = on.traj.findIndex((v) => v < 1.3);
console.log(`γ=${gamma}: first step with max/mean < 1.3: ${first < 0 ? 'never' : first}; final max/mean ${on.last.maxOverMean.toFixed(3)}, cv ${on.last.cv.toFixed(3)}`);
console.log(`γ=0: min max/mean over ${steps} steps ${Math.min(...off.traj).toFixed(3)}`);
console.log(`final bias (γ=${gamma}): ${on.bias.map((b) => b.toFixed(3)).join(' ')}`);
