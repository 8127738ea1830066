/**
 * Autoregressive decoding with KV caches (SPEC §3.10, §4.4): greedy (temperature 0), temperature + top-p
 * sampling from the seeded portable PRNG, and speculative decoding with the MTP module (D ≥ 1 models, depth 1
 * drafts one token). Greedy speculation gives exactly plain greedy decoding; sampling speculation draws from
 * exactly the main model's transformed distribution (accept min(1, p/q), else resample from norm(max(0, p − q))).
 */
import { InputError } from '../errors.js';
import { Random } from '../random.js';
import type { FloatArray } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import { checkMemory, checkPositions, estimateMemory } from './guards.js';
import { createKVCache, type MLACache } from './kv_cache.js';
import type { DeepSeekV3, ModelForwardOptions } from './model.js';
import type { NumericsProfile } from './numerics.js';
import { withRoutingOverride, type RoutingOverride } from './topk.js';
import { mtpForward } from './mtp.js';
import { linearForward } from '../ops/linear.js';

/** Options of {@link generate}; `topk`/`topkGroup` override the routing of every forward, MTP drafts included (topk.ts). */
export interface GenerateOptions extends RoutingOverride {
  /** Tokens to generate (default 32). */
  maxNewTokens?: number;
  /** 0 (default) = greedy; otherwise softmax(logits / temperature). */
  temperature?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches topP (default 1). */
  topP?: number;
  /** PRNG seed for sampling (default 0). */
  seed?: number;
  /** MLA implementation and cache layout (default 'absorb', the official default). */
  attn?: AttnImpl;
  /**
   * 'mtp': draft one token per step with MTP depth 1 and verify it with the main model (SPEC §4.4). Greedy at
   * temperature 0 (output = plain greedy); with temperature > 0 the draft is sampled from q (the MTP head's
   * distribution after the same temperature/top-p transform) and accepted with probability min(1, p/q), else a
   * token is drawn from norm(max(0, p − q)): the output is distributed exactly as plain sampling from p.
   */
  speculative?: 'mtp';
  /**
   * Receives the main model's logits row used to choose the token after absolute position `position` (the
   * input at `position` is the prompt or an already generated id), once per confirmed position, in order.
   * For inspection and tests; the row is a view valid only during the call.
   */
  onMainLogits?: (position: number, logits: FloatArray) => void;
  /** Stop after generating any of these ids (it is included in the output). */
  stopTokens?: readonly number[];
  /** Numerics profile of the main model's forward (default 'exact'; see {@link ModelForwardOptions.numerics}). */
  numerics?: NumericsProfile;
}

/** Result of {@link generate}. */
export interface GenerateResult {
  /** The generated ids (not including the prompt). */
  tokens: number[];
  /** Main-model forward calls (prefill + decode/verify steps). */
  forwardCalls: number;
  /** Speculative decoding: drafts proposed and accepted, and accepted/drafted (null without speculation). */
  drafted: number;
  accepted: number;
  acceptanceRate: number | null;
  /** Bytes allocated by all KV caches (main layers, plus the MTP block's with speculation). */
  cacheBytes: number;
  /**
   * Why generation ended: `maxNewTokens` reached, a stop token, or the prompt plus the generated ids reached
   * max_position_embeddings (fewer than `maxNewTokens` ids; not with the model's `allowLongContext`).
   */
  stopReason: 'max_new_tokens' | 'stop_token' | 'max_position_embeddings';
}

/** Greedy choice: the index of the largest logit of the row [offset, offset + n); ties → the lower index. */
export function greedyToken(x: ArrayLike<number>, offset = 0, n = x.length - offset): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[offset + i]!;
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

/**
 * The temperature/top-p transform of one logits row: softmax(logits/temperature) (f64, max-subtracted) restricted to
 * the top-p nucleus, unnormalised. `order` sorts by logit (ties → lower index); the nucleus is its shortest prefix
 * (at least one token) whose mass reaches topP of the total.
 */
function nucleusWeights(
  logits: ArrayLike<number>,
  temperature: number,
  topP: number,
  offset: number,
  n: number,
): { w: Float64Array; order: number[]; kept: number; mass: number } {
  if (!(topP > 0 && topP <= 1)) throw new InputError(`topP must be in (0, 1], got ${topP}`);
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const w = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    w[i] = Math.exp((logits[offset + i]! - max) / temperature);
    sum += w[i]!;
  }
  // order by logit (not by the rounded probability) so the head of the order is the greedy token
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[offset + b]! - logits[offset + a]! || a - b);
  // nucleus: the shortest prefix of `order` whose probability mass reaches topP
  let kept = 0;
  let mass = 0;
  while (kept < n && (kept === 0 || mass < topP * sum)) mass += w[order[kept++]!]!;
  return { w, order, kept, mass };
}

/**
 * Draws a token from one row of logits: greedy (argmax, ties → lower index) when temperature ≤ 0, else
 * categorical over softmax(logits/temperature) restricted to the top-p nucleus (sorted by logit,
 * ties → lower index; at least one token kept), from one `rng.uniform()` draw.
 */
export function sampleToken(logits: ArrayLike<number>, temperature: number, topP: number, rng: Random, offset = 0, n = logits.length - offset): number {
  if (!(temperature > 0)) return greedyToken(logits, offset, n);
  const { w, order, kept, mass } = nucleusWeights(logits, temperature, topP, offset, n);
  let u = rng.uniform() * mass;
  for (let i = 0; i < kept; i++) {
    u -= w[order[i]!]!;
    if (u < 0) return order[i]!;
  }
  return order[kept - 1]!;
}

/**
 * The distribution {@link sampleToken} draws from, as probabilities [n] (f64, summing to 1): the top-p nucleus of
 * softmax(logits/temperature), renormalised, zero outside it; one-hot at the greedy token when temperature ≤ 0.
 */
export function samplingDistribution(logits: ArrayLike<number>, temperature: number, topP: number, offset = 0, n = logits.length - offset): Float64Array {
  if (!(temperature > 0)) {
    const onehot = new Float64Array(n);
    onehot[greedyToken(logits, offset, n)] = 1;
    return onehot;
  }
  const { w, order, kept, mass } = nucleusWeights(logits, temperature, topP, offset, n);
  const p = new Float64Array(n);
  for (let i = 0; i < kept; i++) p[order[i]!] = w[order[i]!]! / mass;
  return p;
}

/** A categorical draw from probabilities `dist` (summing to 1) by inversion of one `rng.uniform()`; never a zero-probability index. */
export function sampleFromDistribution(dist: ArrayLike<number>, rng: Random): number {
  let u = rng.uniform();
  let last = -1;
  for (let i = 0; i < dist.length; i++) {
    const pi = dist[i]!;
    if (!(pi > 0)) continue;
    last = i;
    u -= pi;
    if (u < 0) return i;
  }
  if (last < 0) throw new InputError('sampleFromDistribution: the distribution has no positive entry');
  return last; // u survived the rounding of Σ dist < 1
}

/**
 * Speculative sampling, acceptance (SPEC §4.4): the probability min(1, p(t̂)/q(t̂)) of keeping the draft t̂ ~ q,
 * where p is the main model's distribution at that position. q(t̂) must be positive (t̂ was drawn from q).
 */
export function speculativeAcceptProbability(p: ArrayLike<number>, q: ArrayLike<number>, draft: number): number {
  const qt = q[draft]!;
  if (!(qt > 0)) throw new InputError(`speculative verification: draft token ${draft} has q = ${qt}; it cannot have been drawn from q`);
  return Math.min(1, p[draft]! / qt);
}

/**
 * Speculative sampling, rejection (SPEC §4.4): the residual norm(max(0, p − q)) a rejected draft is replaced from.
 * When p = q the residual is empty; a rejection then has probability 0 and p itself is returned.
 */
export function speculativeResidual(p: ArrayLike<number>, q: ArrayLike<number>): Float64Array {
  const r = new Float64Array(p.length);
  let z = 0;
  for (let i = 0; i < p.length; i++) {
    r[i] = Math.max(0, p[i]! - q[i]!);
    z += r[i]!;
  }
  if (!(z > 0)) return Float64Array.from(p);
  for (let i = 0; i < r.length; i++) r[i]! /= z;
  return r;
}

/**
 * One speculative-sampling verification (SPEC §4.4): accept the draft t̂ iff u < min(1, p(t̂)/q(t̂)) for one
 * `rng.uniform()` u; on rejection the token is drawn (one more uniform) from norm(max(0, p − q)). For t̂ ~ q the
 * resulting token is distributed exactly as p.
 */
export function speculativeVerify(p: ArrayLike<number>, q: ArrayLike<number>, draft: number, rng: Random): { accepted: boolean; token: number } {
  const a = speculativeAcceptProbability(p, q, draft);
  if (rng.uniform() < a) return { accepted: true, token: draft };
  return { accepted: false, token: sampleFromDistribution(speculativeResidual(p, q), rng) };
}

/** Generates up to `maxNewTokens` ids after `prompt` (one sequence). */
export function generateTokens(model: DeepSeekV3, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  const cfg = model.config;
  const requested = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(requested) || requested < 0) throw new InputError(`maxNewTokens must be a non-negative integer, got ${requested}`);
  if (prompt.length === 0) throw new InputError('generate: the prompt must hold at least one token');
  // prompt + generated ids stay within max_position_embeddings unless the model allows long context
  const long = model.limits.allowLongContext;
  checkPositions(cfg, prompt.length, long, `generate: prompt of ${prompt.length} ids`);
  const maxNew = long ? requested : Math.min(requested, cfg.maxPositionEmbeddings - prompt.length);
  const need = estimateMemory(cfg, model.dtype, { kind: 'generate', promptLength: prompt.length, newTokens: maxNew, attn: opts.attn ?? 'absorb', speculative: opts.speculative === 'mtp' });
  checkMemory({ ...need, weights: model.limits.heldBytes, total: need.total - need.weights + model.limits.heldBytes }, model.limits.maxBytes, `generate (${prompt.length} + ${maxNew} tokens)`);
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 1;
  const attn = opts.attn ?? 'absorb';
  const stop = new Set(opts.stopTokens ?? []);
  const n = prompt.length;
  const maxLen = n + maxNew + 1;
  const numerics = opts.numerics ?? 'exact';
  const route: RoutingOverride = { topk: opts.topk, topkGroup: opts.topkGroup };
  withRoutingOverride(cfg, route, 'generate'); // a k' that does not fit fails before any cache is built
  const caches = model.createCaches(attn, 1, maxLen, { numerics });
  try {
    const V = cfg.vocabSize;

    const rng = new Random(opts.seed ?? 0);
    const onLogits = opts.onMainLogits;
    if (opts.speculative === 'mtp') {
      if (numerics !== 'exact') throw new InputError(`speculative decoding runs in the 'exact' profile only (the official code has no MTP to emulate), got numerics '${numerics}'`);
      if (cfg.numNextnPredictLayers < 1) throw new InputError('speculative decoding with MTP needs num_nextn_predict_layers ≥ 1');
      const policy = temperature > 0 ? samplingPolicy(temperature, topP, rng, V) : GREEDY_POLICY;
      const r = speculativeDecode(model, prompt, maxNew, attn, caches, stop, policy, onLogits, route);
      return { ...r, stopReason: stopReason(r.tokens) };
    }

    const tokens: number[] = [];
    let forwardCalls = 0;
    let input: number[] = [...prompt];
    let pos = 0;
    while (tokens.length < maxNew) {
      const r = model.forward([input], { attn, caches, startPos: pos, logits: 'last', numerics, ...route });
      forwardCalls++;
      pos += input.length;
      onLogits?.(pos - 1, r.logits.data);
      const next = sampleToken(r.logits.data, temperature, topP, rng, 0, V);
      tokens.push(next);
      if (stop.has(next)) break;
      input = [next];
    }
    return { tokens, forwardCalls, drafted: 0, accepted: 0, acceptanceRate: null, cacheBytes: sumBytes(caches), stopReason: stopReason(tokens) };
  } finally {
    for (const c of caches) c.release(); // the caches are this call's own: their resident memory goes back
  }

  function stopReason(out: number[]): GenerateResult['stopReason'] {
    if (out.length > 0 && stop.has(out[out.length - 1]!)) return 'stop_token';
    return out.length < requested ? 'max_position_embeddings' : 'max_new_tokens';
  }
}

function sumBytes(caches: MLACache[]): number {
  return caches.reduce((s, c) => s + c.bytes, 0);
}

/**
 * How speculative decoding picks tokens: `first` from the prefill's last row, `draft` from the MTP logits,
 * `verify` the draft against the main row at the draft's position (the token to emit on rejection), `bonus`
 * from the main row at the accepted draft's own position.
 */
interface SpeculativePolicy {
  first(row: FloatArray): number;
  draft(mtpLogits: FloatArray): number;
  verify(row: FloatArray, draft: number): { accepted: boolean; token: number };
  bonus(row: FloatArray): number;
}

/** Greedy verification: accept iff the draft equals the main argmax; the output is exactly plain greedy. */
const GREEDY_POLICY: SpeculativePolicy = {
  first: (row) => greedyToken(row),
  draft: (mtpLogits) => greedyToken(mtpLogits),
  verify: (row, draft) => {
    const verified = greedyToken(row);
    return { accepted: verified === draft, token: verified };
  },
  bonus: (row) => greedyToken(row),
};

/**
 * Sampling verification (SPEC §4.4) with p, q after the same temperature/top-p transform. Draws from `rng` in a
 * fixed order (first token; per step: draft, acceptance, residual on rejection, bonus on acceptance).
 */
function samplingPolicy(temperature: number, topP: number, rng: Random, V: number): SpeculativePolicy {
  let q: Float64Array | null = null; // the last draft's distribution
  return {
    first: (row) => sampleToken(row, temperature, topP, rng, 0, V),
    draft: (mtpLogits) => {
      q = samplingDistribution(mtpLogits, temperature, topP, 0, V);
      return sampleFromDistribution(q, rng);
    },
    verify: (row, draft) => speculativeVerify(samplingDistribution(row, temperature, topP, 0, V), q!, draft, rng),
    bonus: (row) => sampleToken(row, temperature, topP, rng, 0, V),
  };
}

/**
 * Speculative decoding with MTP depth 1 (SPEC §4.4). Invariant at the top of each step: `toks` holds
 * m ids; the main caches hold positions [0, m−1) (the last id is not yet fed); the MTP cache holds
 * positions [0, m−1), position j built from (h⁰[j], Emb(toks[j+1])); `draft` is its guess for toks[m].
 */
function speculativeDecode(
  model: DeepSeekV3,
  prompt: readonly number[],
  maxNew: number,
  attn: AttnImpl,
  caches: MLACache[],
  stop: Set<number>,
  policy: SpeculativePolicy,
  onLogits: ((position: number, logits: FloatArray) => void) | undefined,
  route: RoutingOverride,
): Omit<GenerateResult, 'stopReason'> {
  const cfg = withRoutingOverride(model.config, route, 'generate');
  const V = cfg.vocabSize;
  const d = cfg.hiddenSize;
  const n = prompt.length;
  const maxLen = n + maxNew + 1;
  const mw = model.mtpWeights(1);
  const main = model.mainWeights();
  const shared = { embed_tokens: main.embed_tokens, lm_head: main.lm_head };
  const mtpCache = createKVCache(cfg, attn, 1, maxLen, model.dtype);
  const rope = model.ropeTables(maxLen + 1);
  const toks: number[] = [...prompt];
  const out: number[] = [];
  let forwardCalls = 0;
  let drafted = 0;
  let accepted = 0;
  const done = (): boolean => out.length >= maxNew || (out.length > 0 && stop.has(out[out.length - 1]!));
  try {

    // MTP over positions [startPos, startPos + S): h⁰ rows and the ids one step ahead; returns its draft
    const mtpDraft = (h0: FloatArray, ahead: number[], startPos: number): number => {
      const S = ahead.length;
      const r = mtpForward(cfg, mw, shared, h0, Int32Array.from(ahead), 1, S, { startPos, rope, attn, cache: mtpCache, logits: false, concatOrder: model.mtpConcatOrder });
      const logits = linearForward(r.normed.subarray((S - 1) * d, S * d), shared.lm_head.data, 1, V, d);
      return policy.draft(logits);
    };

    const pre = model.forward([[...prompt]], { attn, caches, startPos: 0, logits: 'last', ...route });
    forwardCalls++;
    onLogits?.(n - 1, pre.logits.data);
    toks.push(policy.first(pre.logits.data));
    out.push(toks[n]!);
    if (done()) return result();
    let draft = mtpDraft(pre.finalHidden.data, toks.slice(1, n + 1), 0);

    while (!done()) {
      const m = toks.length;
      const r = model.forward([[toks[m - 1]!, draft]], { attn, caches, startPos: m - 1, logits: 'all', ...route });
      forwardCalls++;
      drafted++;
      const row0 = r.logits.data.subarray(0, V);
      onLogits?.(m - 1, row0);
      const v = policy.verify(row0, draft);
      if (v.accepted) {
        accepted++;
        const row1 = r.logits.data.subarray(V, 2 * V);
        onLogits?.(m, row1);
        const bonus = policy.bonus(row1); // the draft's own position gives the next token for free
        toks.push(draft, bonus);
        out.push(draft);
        if (done()) break;
        out.push(bonus);
        if (done()) break;
        draft = mtpDraft(r.finalHidden.data, [draft, bonus], m - 1);
      } else {
        toks.push(v.token);
        out.push(v.token);
        for (const c of caches) c.truncate(m); // drop the rejected draft's entries
        if (done()) break;
        draft = mtpDraft(r.finalHidden.data.subarray(0, d), [v.token], m - 1);
      }
    }
    return result();
  } finally {
    mtpCache.release();
  }

  function result(): Omit<GenerateResult, 'stopReason'> {
    return {
      tokens: out.slice(0, maxNew),
      forwardCalls,
      drafted,
      accepted,
      acceptanceRate: drafted > 0 ? accepted / drafted : null,
      cacheBytes: sumBytes(caches) + mtpCache.bytes,
    };
  }
}
