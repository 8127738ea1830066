/**
 * The main model under a numerics profile: the official `Transformer.forward` chain (inference/model.py) with bf16
 * tensors, logits at every position (the official forward keeps only the last; the module chain is the same).
 *
 *   h = embed(ids) (bf16 rows);  for each block: h = bf16(h + attn(attn_norm(h))); h = bf16(h + ffn(ffn_norm(h)))
 *   logits = F.linear(norm(h), W_head) (bf16)
 *
 * Trace names and shapes are those of the exact forward, so the two can be compared tensor by tensor.
 */
import { InputError } from '../../errors.js';
import type { AttnImpl } from '../attention.js';
import { isDenseLayer, type ModelConfig } from '../config.js';
import type { Routing } from '../gate.js';
import type { MLACache } from '../kv_cache.js';
import type { TraceFn } from '../trace.js';
import { addBF16, rmsnormBF16 } from './arith.js';
import { mlaProfile } from './attention.js';
import { mlpProfile, moeProfile } from './ffn.js';
import type { ProfileWeights } from './linear.js';
import { ropeTablesF32, type RopeTablesF32 } from './rope.js';

/** Options of {@link profileForward}. */
export interface ProfileForwardOptions {
  startPos: number;
  attn: AttnImpl;
  /** One float32 cache per main layer. */
  caches?: MLACache[];
  trace?: TraceFn;
  logits: 'all' | 'last' | 'none';
  /** RoPE tables covering at least startPos + S positions (built when absent). */
  rope?: RopeTablesF32;
}

/** Output of {@link profileForward}: bf16 values in f32 arrays. */
export interface ProfileForwardOutput {
  logits: Float32Array;
  hidden: Float32Array[];
  finalHidden: Float32Array;
  routing: Map<number, Routing>;
}

/** Forward of the main model on validated ids [B, S] under the profile of `pw`. */
export function profileForward(config: ModelConfig, pw: ProfileWeights, ids: Int32Array, B: number, S: number, opts: ProfileForwardOptions): ProfileForwardOutput {
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const N = B * S;
  const { startPos, attn, caches, trace } = opts;
  if (caches !== undefined && caches.length !== config.numHiddenLayers) {
    throw new InputError(`forward: got ${caches.length} KV caches for ${config.numHiddenLayers} layers`);
  }
  const rope = opts.rope ?? ropeTablesF32(config, startPos + S);
  const eps = config.rmsNormEps;

  // h = embed(ids): rows of the bf16 embedding
  const E = pw.bf16('model.embed_tokens.weight');
  let h: Float32Array = new Float32Array(N * d);
  for (let t = 0; t < N; t++) h.set(E.subarray(ids[t]! * d, (ids[t]! + 1) * d), t * d);
  trace?.('model.embed_tokens:out', [B, S, d], h);

  const hidden: Float32Array[] = [];
  const routing = new Map<number, Routing>();
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = `model.layers.${l}`;
    const a = rmsnormBF16(h, pw.bf16(`${p}.input_layernorm.weight`), N, d, eps);
    trace?.(`${p}.input_layernorm:out`, [B, S, d], a);
    const attnOut = mlaProfile(config, pw, a, B, S, {
      startPos,
      rope,
      attn,
      ...(caches !== undefined ? { cache: caches[l]! } : {}),
      ...(trace !== undefined ? { trace } : {}),
      prefix: `${p}.self_attn`,
    });
    const hMid = addBF16(h, attnOut);
    const f = rmsnormBF16(hMid, pw.bf16(`${p}.post_attention_layernorm.weight`), N, d, eps);
    trace?.(`${p}.post_attention_layernorm:out`, [B, S, d], f);
    let ffn: Float32Array;
    if (isDenseLayer(config, l)) {
      ffn = mlpProfile(pw, `${p}.mlp`, f, N);
    } else {
      const bias = pw.routerBias(`${p}.mlp.gate.e_score_correction_bias`);
      const r = moeProfile(config, pw, bias, `${p}.mlp`, f, N, trace);
      ffn = r.out;
      routing.set(l, r.routing);
    }
    trace?.(`${p}.mlp:out`, [B, S, d], ffn);
    h = addBF16(hMid, ffn);
    trace?.(`${p}:out`, [B, S, d], h);
    hidden.push(h);
  }

  const finalHidden = rmsnormBF16(h, pw.bf16('model.norm.weight'), N, d, eps);
  trace?.('model.norm:out', [B, S, d], finalHidden);
  let logits: Float32Array;
  if (opts.logits === 'all') {
    logits = pw.linear(finalHidden, 'lm_head.weight', N);
    trace?.('lm_head:out', [B, S, V], logits);
  } else if (opts.logits === 'last') {
    const last = new Float32Array(B * d);
    for (let b = 0; b < B; b++) last.set(finalHidden.subarray((b * S + S - 1) * d, (b * S + S) * d), b * d);
    logits = pw.linear(last, 'lm_head.weight', B);
  } else {
    logits = new Float32Array(0);
  }
  return { logits, hidden, finalHidden, routing };
}
