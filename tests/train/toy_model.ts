/**
 * A toy TrainableModel for the trainer tests: a bigram softmax model over V tokens,
 * logits_t = s ⊙ W[x_t, :] (W [V, V] decays, s [V] does not), mean CE over non-ignored targets,
 * plus a fake top-1 router per token, e = argmax_e (((7x + 3e) mod E)/E + b_e), whose loads feed
 * the bias update (the router does not affect the loss).
 */
import type { LossOptions, TokenBatch } from '../../src/model/model.js';
import { IGNORE_INDEX } from '../../src/model/loss.js';
import { Random } from '../../src/random.js';
import { Tensor, type DType } from '../../src/tensor.js';
import type { LossParts, TrainableModel } from '../../src/train/trainer.js';

export const TOY_BIAS = 'model.layers.0.mlp.gate.e_score_correction_bias';

export class ToyBigram implements TrainableModel {
  readonly weights = new Map<string, Tensor>();
  readonly V: number;
  readonly E: number;

  constructor(V: number, E: number, dtype: DType, seed = 1) {
    this.V = V;
    this.E = E;
    const rng = new Random(seed);
    const W = Tensor.zeros([V, V], dtype);
    rng.fillNormal(W.data, 0.1);
    const s = Tensor.zeros([V], dtype);
    s.data.fill(1);
    this.weights.set('embed.weight', W);
    this.weights.set('scale.weight', s);
    this.weights.set(TOY_BIAS, Tensor.zeros([E], dtype));
  }

  lossAndGrads(batch: TokenBatch, _opts: LossOptions = {}): {
    loss: LossParts;
    grads: Map<string, Tensor>;
    loads: { biasName: string; load: Int32Array }[];
    targets: number;
  } {
    const { ids, B, T, labels } = batch;
    const V = this.V;
    const W = this.weights.get('embed.weight')!;
    const s = this.weights.get('scale.weight')!;
    const bias = this.weights.get(TOY_BIAS)!.data;
    const dW = Tensor.zeros(W.shape, W.dtype);
    const ds = Tensor.zeros(s.shape, s.dtype);
    const load = new Int32Array(this.E);
    const logits = new Float64Array(V);
    let n = 0;
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if ((labels ? labels[b * T + t] : ids[b * (T + 1) + t + 1]) !== IGNORE_INDEX) n++;
    let sum = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const x = ids[b * (T + 1) + t]!;
        let best = 0;
        for (let e = 1; e < this.E; e++) {
          const sc = (e2: number): number => ((7 * x + 3 * e2) % this.E) / this.E + bias[e2]!;
          if (sc(e) > sc(best)) best = e;
        }
        load[best]!++;
        const y = labels ? labels[b * T + t]! : ids[b * (T + 1) + t + 1]!;
        if (y === IGNORE_INDEX) continue;
        let max = -Infinity;
        for (let j = 0; j < V; j++) {
          logits[j] = s.data[j]! * W.data[x * V + j]!;
          max = Math.max(max, logits[j]!);
        }
        let z = 0;
        for (let j = 0; j < V; j++) z += Math.exp(logits[j]! - max);
        sum += Math.log(z) + max - logits[y]!;
        for (let j = 0; j < V; j++) {
          // dCE/dlogit_j = (p_j − 1[j=y])/n; logit_j = s_j·W[x,j]
          const g = (Math.exp(logits[j]! - max) / z - (j === y ? 1 : 0)) / n;
          dW.data[x * V + j] = dW.data[x * V + j]! + g * s.data[j]!;
          ds.data[j] = ds.data[j]! + g * W.data[x * V + j]!;
        }
      }
    }
    const main = n > 0 ? sum / n : 0;
    return {
      loss: { main, mtp: 0, balance: 0, total: main },
      grads: new Map([['embed.weight', dW], ['scale.weight', ds], [TOY_BIAS, Tensor.zeros([this.E], W.dtype)]]),
      loads: [{ biasName: TOY_BIAS, load }],
      targets: n,
    };
  }
}
