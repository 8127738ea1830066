// Quickstart: the README's API example. Run it after `npm run build` with `node examples/quickstart.mjs`
// (tests/examples/examples.test.ts runs it and checks what it prints).
//
// It builds the `tiny` preset with seeded random weights, runs a forward pass and the training
// objective with its gradients, then checks an f32 run (absorbed attention) against the f64 oracle
// (naive attention) tensor by tensor, the way `dsv3 verify` does.
import { DeepSeekV3, getPreset, initWeights, TraceRecorder, compareTraces, comparisonToText } from 'deepseek-v3-ref';

const config = getPreset('tiny'); // d 64, 3 layers (1 dense + 2 MoE), 16 experts top-4, one MTP module
const model = new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float32' }));

// Forward: logits at every position, [B, T, vocab].
const ids = [[1, 17, 42, 99, 7, 7, 200, 3]];
const { logits, routing } = model.forward(ids);
console.log(`logits [${logits.shape.join(', ')}]`);
console.log(`layer 1 experts of token 0: ${[...routing.get(1).indices.slice(0, config.numExpertsPerTok)].join(', ')}`);

// Training objective (docs/spec.md §5.4): next-token CE + MTP + balance loss, and one gradient per weight.
const { loss, grads } = model.lossAndGrads([[...ids[0], 5]]); // rows of T+1 ids: inputs ids[:, :T], targets ids[:, 1:]
console.log(`loss main ${loss.main.toFixed(4)} mtp ${loss.mtp.toFixed(4)} balance ${loss.balance.toExponential(3)} total ${loss.total.toFixed(4)}`);
console.log(`gradients: ${grads.size} tensors, e.g. grad of model.layers.1.self_attn.kv_b_proj.weight [${grads.get('model.layers.1.self_attn.kv_b_proj.weight').shape.join(', ')}]`);

// Verify-style comparison: the same weights in f64 (initWeights draws f64 and rounds for f32) as the oracle.
const oracle = new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float64' }));
const reference = new TraceRecorder();
oracle.forward(ids, { trace: reference.trace, attn: 'naive' });
const mine = new TraceRecorder();
model.forward(ids, { trace: mine.trace, attn: 'absorb' });
// Default tolerances: rtol 1e-3, atol 1e-5, cosine difference 1e-6. `kv_b_proj:out` exists only on the naive path,
// so it is listed as missing in the library, which is not a failure.
const result = compareTraces(mine.tensors, reference.tensors);
process.stdout.write(comparisonToText(result));
console.log(`first divergent tensor: ${result.firstDivergent ?? 'none'}`);
process.exitCode = result.allPassed ? 0 : 1;
