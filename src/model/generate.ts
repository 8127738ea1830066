/**
 * Autoregressive decoding with KV caches (SPEC §3.10, §4.4): greedy (temperature 0), temperature + top-p
 * sampling from the seeded portable PRNG, and speculative decoding with the MTP module (D ≥ 1 models, depth 1
 * drafts one token), whose greedy output is exactly plain greedy decoding.
 */
import { InputError, UnsupportedError } from '../errors.js';
import { Random } from '../random.js';
import type { FloatArray } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import { createKVCache, type MLACache } from './kv_cache.js';
import type { DeepSeekV3 } from './model.js';
import { mtpForward } from './mtp.js';
import { linearForward } from './transformer.js';

/** Options of {@link generate}. */
export interface GenerateOptions {
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
  /** 'mtp': draft one token per step with MTP depth 1 and verify it with the main model (greedy only). */
  speculative?: 'mtp';
  /** Stop after generating any of these ids (it is included in the output). */
  stopTokens?: readonly number[];
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
 * Draws a token from one row of logits: greedy (argmax, ties → lower index) when temperature ≤ 0, else
 * categorical over softmax(logits/temperature) restricted to the top-p nucleus (sorted by logit,
 * ties → lower index; at least one token kept), from one `rng.uniform()` draw.
 */
export function sampleToken(logits: ArrayLike<number>, temperature: number, topP: number, rng: Random, offset = 0, n = logits.length - offset): number {
  if (!(temperature > 0)) return greedyToken(logits, offset, n);
  if (!(topP > 0 && topP <= 1)) throw new InputError(`topP must be in (0, 1], got ${topP}`);
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((logits[offset + i]! - max) / temperature);
    sum += p[i]!;
  }
  // order by logit (not by the rounded probability) so the head of the order is the greedy token
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[offset + b]! - logits[offset + a]! || a - b);
  // nucleus: the shortest prefix of `order` whose probability mass reaches topP
  let kept = 0;
  let mass = 0;
  while (kept < n && (kept === 0 || mass < topP * sum)) mass += p[order[kept++]!]!;
  let u = rng.uniform() * mass;
  for (let i = 0; i < kept; i++) {
    u -= p[order[i]!]!;
    if (u < 0) return order[i]!;
  }
  return order[kept - 1]!;
}

/** Generates up to `maxNewTokens` ids after `prompt` (one sequence). */
export function generateTokens(model: DeepSeekV3, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  const cfg = model.config;
  const maxNew = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new InputError(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
  if (prompt.length === 0) throw new InputError('generate: the prompt must hold at least one token');
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 1;
  const attn = opts.attn ?? 'absorb';
  const stop = new Set(opts.stopTokens ?? []);
  const n = prompt.length;
  const maxLen = n + maxNew + 1;
  const caches = model.createCaches(attn, 1, maxLen);
  const V = cfg.vocabSize;

  if (opts.speculative === 'mtp') {
    if (temperature > 0) throw new UnsupportedError('speculative decoding with MTP is implemented for greedy decoding (temperature 0) only');
    if (cfg.numNextnPredictLayers < 1) throw new InputError('speculative decoding with MTP needs num_nextn_predict_layers ≥ 1');
    return speculativeGreedy(model, prompt, maxNew, attn, caches, stop);
  }

  const rng = new Random(opts.seed ?? 0);
  const tokens: number[] = [];
  let forwardCalls = 0;
  let input: number[] = [...prompt];
  let pos = 0;
  while (tokens.length < maxNew) {
    const r = model.forward([input], { attn, caches, startPos: pos, logits: 'last' });
    forwardCalls++;
    pos += input.length;
    const next = sampleToken(r.logits.data, temperature, topP, rng, 0, V);
    tokens.push(next);
    if (stop.has(next)) break;
    input = [next];
  }
  return { tokens, forwardCalls, drafted: 0, accepted: 0, acceptanceRate: null, cacheBytes: sumBytes(caches) };
}

function sumBytes(caches: MLACache[]): number {
  return caches.reduce((s, c) => s + c.bytes, 0);
}

/**
 * Greedy speculative decoding with MTP depth 1 (SPEC §4.4). Invariant at the top of each step: `toks` holds
 * m ids; the main caches hold positions [0, m−1) (the last id is not yet fed); the MTP cache holds
 * positions [0, m−1), position j built from (h⁰[j], Emb(toks[j+1])); `draft` is its guess for toks[m].
 */
function speculativeGreedy(
  model: DeepSeekV3,
  prompt: readonly number[],
  maxNew: number,
  attn: AttnImpl,
  caches: MLACache[],
  stop: Set<number>,
): GenerateResult {
  const cfg = model.config;
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

  // MTP over positions [startPos, startPos + S): h⁰ rows and the ids one step ahead; returns its draft
  const mtpDraft = (h0: FloatArray, ahead: number[], startPos: number): number => {
    const S = ahead.length;
    const r = mtpForward(cfg, mw, shared, h0, Int32Array.from(ahead), 1, S, { startPos, rope, attn, cache: mtpCache, logits: false });
    const logits = linearForward(r.normed.subarray((S - 1) * d, S * d), shared.lm_head.data, 1, V, d);
    return greedyToken(logits);
  };

  const pre = model.forward([[...prompt]], { attn, caches, startPos: 0, logits: 'last' });
  forwardCalls++;
  toks.push(greedyToken(pre.logits.data));
  out.push(toks[n]!);
  if (done()) return result();
  let draft = mtpDraft(pre.finalHidden.data, toks.slice(1, n + 1), 0);

  while (!done()) {
    const m = toks.length;
    const r = model.forward([[toks[m - 1]!, draft]], { attn, caches, startPos: m - 1, logits: 'all' });
    forwardCalls++;
    drafted++;
    const verified = greedyToken(r.logits.data, 0, V);
    if (verified === draft) {
      accepted++;
      const bonus = greedyToken(r.logits.data, V, V); // the draft's own position gives the next token for free
      toks.push(draft, bonus);
      out.push(draft);
      if (done()) break;
      out.push(bonus);
      if (done()) break;
      draft = mtpDraft(r.finalHidden.data, [draft, bonus], m - 1);
    } else {
      toks.push(verified);
      out.push(verified);
      for (const c of caches) c.truncate(m); // drop the rejected draft's entries
      if (done()) break;
      draft = mtpDraft(r.finalHidden.data.subarray(0, d), [verified], m - 1);
    }
  }
  return result();

  function result(): GenerateResult {
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
