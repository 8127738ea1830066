/**
 * Guard rails that refuse what cannot run before anything is allocated: a memory estimate of a workload
 * (weights, gradients, AdamW moments, KV caches, activations, file buffers) checked against a budget, the
 * position limit `max_position_embeddings`, a scan for non-finite weights, and runtime checks of the `dtype`
 * and option arguments of the public API. Browser-safe: the platform's memory size is feature-detected.
 */
import { InputError, ResourceError, WeightsError } from '../errors.js';
import type { DType, FloatArray, Tensor } from '../tensor.js';
import type { AttnImpl } from './attention.js';
import { countParameters, qkHeadDim, type ModelConfig } from './config.js';
import { cacheValuesPerTokenPerLayer } from './kv_cache.js';

// ---------------------------------------------------------------------------------------------
// Runtime argument checks

/** The API's one spelling of compute dtypes (the CLI's `--dtype` takes `f32 | f64`). */
const API_DTYPES: readonly DType[] = ['float32', 'float64'];

/**
 * Returns `value` as a DType, or throws a TypeError naming `where` and the allowed values. JavaScript callers
 * are not type-checked: without this, `{ dtype: 'f32' }` silently allocated f64.
 */
export function checkDType(value: unknown, where: string): DType {
  if (value === 'float32' || value === 'float64') return value;
  const cli = value === 'f32' || value === 'f64' ? ` ('${value}' is the CLI's --dtype spelling)` : '';
  throw new TypeError(`${where}: dtype must be ${API_DTYPES.map((d) => `'${d}'`).join(' or ')}, got ${describe(value)}${cli}`);
}

/** Bytes per value of a compute dtype. */
export function bytesPerValue(dtype: DType): number {
  return dtype === 'float32' ? 4 : 8;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === undefined) return 'undefined';
  return typeof v === 'object' && v !== null ? (Array.isArray(v) ? 'an array' : 'an object') : String(v);
}

// ---------------------------------------------------------------------------------------------
// Memory budget

/** Options of the API entry points that allocate (initWeights, loadModel, new DeepSeekV3). */
export interface ResourceOptions {
  /**
   * Memory budget in bytes; a request whose estimate exceeds it is refused with a ResourceError before anything
   * is allocated. Default {@link defaultMemoryBudget}; `Infinity` switches the check off.
   */
  maxBytes?: number;
  /**
   * Run past `max_position_embeddings` (default false: more positions are an InputError naming the length and
   * the limit; generation stops at the limit). RoPE/YaRN are defined there, but the model was not trained there.
   */
  allowLongContext?: boolean;
}

/** Budget when the platform does not report its memory size. */
const FALLBACK_BUDGET = 4 * 2 ** 30;

/**
 * The default budget: 75% of the machine's memory. In Node that is `os.totalmem()` (reached through
 * `process.getBuiltinModule`, Node ≥ 20.16, so this module imports nothing from Node); in a browser
 * `navigator.deviceMemory` GiB (Chromium; it reports at most 8); elsewhere 4 GiB.
 */
export function defaultMemoryBudget(): number {
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown }; navigator?: { deviceMemory?: unknown } };
  const os = g.process?.getBuiltinModule?.('node:os') as { totalmem?: () => number } | undefined;
  const total = os?.totalmem?.();
  if (typeof total === 'number' && total > 0) return Math.floor(0.75 * total);
  const gib = g.navigator?.deviceMemory;
  if (typeof gib === 'number' && gib > 0) return Math.floor(0.75 * gib * 2 ** 30);
  return FALLBACK_BUDGET;
}

/** `maxBytes` of an options object: validated, or the default budget. */
export function resolveMaxBytes(maxBytes: unknown, where: string): number {
  if (maxBytes === undefined) return defaultMemoryBudget();
  if (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes <= 0) {
    throw new TypeError(`${where}: maxBytes must be a positive number of bytes (Infinity = no limit), got ${describe(maxBytes)}`);
  }
  return maxBytes;
}

/** Bytes with two significant digits in decimal units: `2.7 TB`, `18 GB`, `640 kB`, `512 B`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let u = 0;
  let x = n;
  // bytes are whole; above 1 kB keep two significant digits, moving up a unit when rounding reaches 1000
  while (u < units.length - 1 && (u === 0 ? x >= 1000 : Number(x.toPrecision(2)) >= 1000)) {
    x /= 1000;
    u++;
  }
  return `${u === 0 ? Math.round(x) : Number(x.toPrecision(2))} ${units[u]}`;
}

/** What a workload holds at its peak, in bytes, by part. */
export interface MemoryEstimate {
  /** The model's parameters in the compute dtype (MTP modules included). */
  weights: number;
  /** One gradient per parameter (two when micro-batches accumulate). */
  grads: number;
  /** AdamW's first and second moments. */
  optimizer: number;
  /** KV caches of generation (main layers, and the MTP block's when speculating). */
  caches: number;
  /** Activations of the largest pass: logits, hidden states, attention scores, saved tensors. */
  activations: number;
  /** File buffers: checkpoint bytes read whole, input data, serialised checkpoints. */
  io: number;
  total: number;
}

/** A unit of work to estimate; `batch` × `positions` tokens per pass. */
export type Workload =
  /** Weights only (initWeights, loadModel). */
  | { kind: 'weights' }
  /** One forward; `save` keeps every layer's activations (training forward, traces). */
  | { kind: 'forward'; batch: number; positions: number; startPos?: number; attn?: AttnImpl; logits?: 'all' | 'last' | 'none'; save?: boolean }
  /** Forward + backward of the objective (lossAndGrads), `positions` predicted per row. */
  | { kind: 'grad'; batch: number; positions: number; mtp?: boolean }
  /** A training run: grad per micro-batch, gradient accumulation, AdamW moments. */
  | { kind: 'train'; batch: number; positions: number; microBatches?: number; mtp?: boolean }
  /** Generation of one sequence with KV caches. */
  | { kind: 'generate'; promptLength: number; newTokens: number; attn?: AttnImpl; speculative?: boolean };

/**
 * Estimates the bytes a workload holds at its peak. Weights, gradients, moments and caches are exact (they are
 * what initWeights, lossAndGrads, AdamW and createCaches allocate); activations count the large buffers of one
 * layer's attention and MLP (all layers' when saved for backward), the hidden states and the logits. The runtime
 * itself, JavaScript objects and garbage not yet collected are not counted. Measured peak RSS above Node's own
 * ~57 MB was 0.76× (forward, small, 8×1024), 1.13× (train, small, 4×512) and 2.1× (train, tiny, 8×64: fixed
 * overheads dominate) of this estimate (docs/cli.md): it refuses what cannot fit, it does not predict the peak.
 */
export function estimateMemory(c: ModelConfig, dtype: DType, work: Workload, ioBytes = 0): MemoryEstimate {
  const b = bytesPerValue(dtype);
  const p = countParameters(c);
  const params = p.total + p.mtp; // = Σ numel over parameterSpecs (embedding and head shared with MTP)
  const weights = params * b;
  let grads = 0;
  let optimizer = 0;
  let caches = 0;
  let activations = 0;
  switch (work.kind) {
    case 'weights':
      break;
    case 'forward': {
      const S = work.positions;
      const T = (work.startPos ?? 0) + S;
      activations = forwardValues(c, work.batch, S, T, work.attn ?? 'naive', work.logits ?? 'all', work.save === true) * b;
      break;
    }
    case 'grad':
    case 'train': {
      grads = weights;
      activations = trainingValues(c, work.batch, work.positions, work.mtp ?? c.numNextnPredictLayers > 0) * b;
      if (work.kind === 'train') {
        if ((work.microBatches ?? 1) > 1) grads += weights; // the accumulated sum beside each micro-batch's gradient
        optimizer = 2 * weights; // m and v
      }
      break;
    }
    case 'generate': {
      const attn = work.attn ?? 'absorb';
      const maxLen = work.promptLength + work.newTokens + 1; // generateTokens' cache length
      const layers = c.numHiddenLayers + (work.speculative === true ? 1 : 0);
      caches = cacheValuesPerTokenPerLayer(c, attn) * layers * maxLen * b;
      activations = forwardValues(c, 1, work.promptLength, work.promptLength, attn, 'last', false, true) * b; // the prefill, into the caches
      break;
    }
  }
  const total = weights + grads + optimizer + caches + activations + ioBytes;
  return { weights, grads, optimizer, caches, activations, io: ioBytes, total };
}

/**
 * Values one layer's attention allocates for N = B·S new tokens attending over T keys (SPEC §3.4). `blocked`: the
 * cache-free naive inference path, which scores 32 query rows at a time (attention.ts causalAttention).
 */
function attentionValues(c: ModelConfig, B: number, S: number, T: number, attn: AttnImpl, blocked = false): number {
  const N = B * S;
  const H = c.numAttentionHeads;
  const qk = qkHeadDim(c);
  const C = c.kvLoraRank;
  const R = c.qkRopeHeadDim;
  const Vd = c.vHeadDim;
  // q (+ its split into q_nope | q_pe), the query latent and its norm, kv_a output, latent, normed latent, k_pe
  const projections = N * (2 * H * qk + 2 * c.qLoraRank + (C + R) + 2 * C + R);
  // naive: kv_b_proj output [N, H(n+V)] and its per-head copies; absorbed: q̃ and õ [H, S, C] of one row
  const keys = attn === 'naive' ? 2 * N * H * (c.qkNopeHeadDim + Vd) : 2 * H * S * C;
  const scores = B * H * (blocked ? Math.min(S, 32) : S) * T;
  const outputs = 2 * N * H * Vd + N * c.hiddenSize; // head outputs, their token-major copy, o_proj
  return projections + keys + scores + outputs;
}

/** Values one layer's MLP (dense) or MoE allocates for N tokens. */
function mlpValues(c: ModelConfig, N: number, layer: number): number {
  const d = c.hiddenSize;
  if (layer < c.firstKDenseReplace) return N * (3 * c.intermediateSize + d);
  const K = c.numExpertsPerTok;
  const router = 2 * N * c.nRoutedExperts; // logits and scores
  const routed = N * K * (d + 3 * c.moeIntermediateSize + d + 1); // gathered rows, SwiGLU parts, outputs, weights
  const shared = c.nSharedExperts > 0 ? N * (3 * c.nSharedExperts * c.moeIntermediateSize + d) : 0;
  return router + routed + shared + N * d;
}

/** One block's values: its attention, its MLP and the four residual/norm rows (x, a, hMid, f). */
function blockValues(c: ModelConfig, B: number, S: number, T: number, attn: AttnImpl, layer: number, blocked = false): number {
  return attentionValues(c, B, S, T, attn, blocked) + mlpValues(c, B * S, layer) + 4 * B * S * c.hiddenSize;
}

/** Peak activation values of one forward: kept hidden states and logits, plus the largest block (all blocks if saved). */
function forwardValues(c: ModelConfig, B: number, S: number, T: number, attn: AttnImpl, logits: 'all' | 'last' | 'none', save: boolean, cached = T > S): number {
  const N = B * S;
  const L = c.numHiddenLayers;
  const hidden = (L + 2) * N * c.hiddenSize; // embedding output, every block's output, the final norm
  const head = logits === 'all' ? N * c.vocabSize : logits === 'last' ? B * c.vocabSize : 0;
  const blocked = attn === 'naive' && !save && !cached; // no cache, nothing saved: the blocked causal path
  let blocks = 0;
  for (let l = 0; l < L; l++) {
    const v = blockValues(c, B, S, T, attn, l, blocked);
    blocks = save ? blocks + v : Math.max(blocks, v);
  }
  return hidden + head + blocks;
}

/** Peak activation values of lossAndGrads on B rows of `S` predicted positions: every block saved, logits and their gradient, MTP depths. */
function trainingValues(c: ModelConfig, B: number, S: number, mtp: boolean): number {
  const N = B * S;
  const d = c.hiddenSize;
  const main = forwardValues(c, B, S, S, 'naive', 'all', true) + N * c.vocabSize; // + dlogits
  const backward = 2 * B * c.numAttentionHeads * S * S + blockValues(c, B, S, S, 'naive', c.numHiddenLayers - 1); // dP, dA and one block's gradients
  let depths = 0;
  if (mtp) {
    for (let k = 1; k <= c.numNextnPredictLayers && S - k >= 1; k++) {
      const Sk = S - k;
      depths += blockValues(c, B, Sk, Sk, 'naive', c.numHiddenLayers + k - 1) + B * Sk * (2 * c.vocabSize + 5 * d);
    }
  }
  return main + backward + depths;
}

/** Names the parts of an estimate that are not zero: `weights 1.2 GB, activations 3.4 GB`. */
function parts(e: MemoryEstimate): string {
  const named: [string, number][] = [
    ['weights', e.weights],
    ['gradients', e.grads],
    ['AdamW moments', e.optimizer],
    ['KV caches', e.caches],
    ['activations', e.activations],
    ['file buffers', e.io],
  ];
  return named
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${formatBytes(v)}`)
    .join(', ');
}

/**
 * Throws a ResourceError when `estimate.total` exceeds `maxBytes`, in one sentence: `deepseek-v3 needs ~2.7 TB for
 * weights alone; limit 18 GB` (or the parts, when the weights alone fit). `what` names the model or the request,
 * `override` how to raise the limit (`--max-memory SIZE`, `maxBytes`).
 */
export function checkMemory(estimate: MemoryEstimate, maxBytes: number, what: string, override = 'the maxBytes option raises it'): void {
  if (!(estimate.total > maxBytes)) return;
  const need =
    estimate.weights > maxBytes
      ? `~${formatBytes(estimate.weights)} for weights alone`
      : `~${formatBytes(estimate.total)} (${parts(estimate)})`;
  throw new ResourceError(`${what} needs ${need}; limit ${formatBytes(maxBytes)} (${override})`);
}

// ---------------------------------------------------------------------------------------------
// Per-model limits (new DeepSeekV3)

/** The resolved limits a DeepSeekV3 instance checks each pass against. */
export interface ModelLimits {
  maxBytes: number;
  allowLongContext: boolean;
  /** Bytes the model's tensors already hold. */
  heldBytes: number;
}

/** Validates the resource options of `new DeepSeekV3` and measures what its tensors hold. */
export function modelLimits(opts: ResourceOptions, tensors: Iterable<Tensor>): ModelLimits {
  if (opts.allowLongContext !== undefined && typeof opts.allowLongContext !== 'boolean') {
    throw new TypeError(`DeepSeekV3: allowLongContext must be a boolean, got ${describe(opts.allowLongContext)}`);
  }
  let heldBytes = 0;
  for (const t of tensors) heldBytes += t.data.byteLength;
  return { maxBytes: resolveMaxBytes(opts.maxBytes, 'DeepSeekV3'), allowLongContext: opts.allowLongContext === true, heldBytes };
}

/**
 * InputError when positions [0, `end`) go past max_position_embeddings (unless long context is allowed). `what`
 * names the input, `override` how to allow it.
 */
export function checkPositions(c: ModelConfig, end: number, allowLong: boolean, what: string, override = 'allowLongContext: true runs past it'): void {
  if (allowLong || end <= c.maxPositionEmbeddings) return;
  throw new InputError(`${what}: ${end} positions exceed max_position_embeddings ${c.maxPositionEmbeddings} (${override})`);
}

/** The checks at the top of DeepSeekV3.forward: the position limit and the memory of the pass. */
export function checkForwardPass(
  c: ModelConfig,
  dtype: DType,
  limits: ModelLimits,
  B: number,
  T: number,
  startPos: number,
  attn: AttnImpl,
  logits: 'all' | 'last' | 'none',
): void {
  checkPositions(c, startPos + T, limits.allowLongContext, `forward: ids [${B}, ${T}] from position ${startPos}`);
  const e = estimateMemory(c, dtype, { kind: 'forward', batch: B, positions: T, startPos, attn, logits });
  checkMemory({ ...e, weights: limits.heldBytes, total: e.total - e.weights + limits.heldBytes }, limits.maxBytes, `forward of ${B}×${T} tokens`);
}

/** The checks at the top of DeepSeekV3.lossAndGrads (B rows of T predicted positions). */
export function checkTrainingPass(c: ModelConfig, dtype: DType, limits: ModelLimits, B: number, T: number): void {
  checkPositions(c, T, limits.allowLongContext, `lossAndGrads: ids [${B}, ${T + 1}]`);
  const e = estimateMemory(c, dtype, { kind: 'grad', batch: B, positions: T });
  checkMemory({ ...e, weights: limits.heldBytes, total: e.total - e.weights + limits.heldBytes }, limits.maxBytes, `lossAndGrads of ${B}×${T} tokens`);
}

// ---------------------------------------------------------------------------------------------
// Non-finite weights

/** The first non-finite value of a weights map (in its iteration order). */
export interface NonFiniteValue {
  /** Tensor name. */
  name: string;
  /** Flat (row-major) index into the tensor. */
  index: number;
  /** The same index per dimension. */
  position: number[];
  /** NaN, Infinity or -Infinity. */
  value: number;
}

function firstNonFinite(x: FloatArray): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v - v !== 0) return i; // NaN and ±Infinity are the values for which v − v is not 0
  }
  return -1;
}

/** Scans the weights (in map order) and returns the first NaN or ±Infinity, or null when every value is finite. */
export function findNonFinite(weights: Iterable<[string, Tensor]>): NonFiniteValue | null {
  for (const [name, t] of weights) {
    const index = firstNonFinite(t.data);
    if (index < 0) continue;
    const position: number[] = [];
    let rest = index;
    for (let k = t.shape.length - 1; k >= 0; k--) {
      position.unshift(rest % t.shape[k]!);
      rest = Math.floor(rest / t.shape[k]!);
    }
    return { name, index, position, value: t.data[index]! };
  }
  return null;
}

/** One sentence naming the first non-finite value: `tensor 'x' holds NaN at [0, 17]`. */
export function describeNonFinite(f: NonFiniteValue): string {
  return `tensor '${f.name}' holds ${f.value} at [${f.position.join(', ')}] (flat index ${f.index})`;
}

/** What loading does with a non-finite weight: a warning (default), a WeightsError, or nothing (no scan). */
export type NonFinitePolicy = 'warn' | 'error' | 'ignore';

/**
 * The load-time scan: with 'warn' pushes one warning onto `warnings`, with 'error' throws a WeightsError naming
 * `source`, the tensor and the index; 'ignore' skips the scan.
 */
export function scanLoadedWeights(weights: Iterable<[string, Tensor]>, policy: NonFinitePolicy | undefined, source: string, warnings: string[]): void {
  const p = policy ?? 'warn';
  if (p !== 'warn' && p !== 'error' && p !== 'ignore') throw new TypeError(`loadWeights: nonFinite must be 'warn', 'error' or 'ignore', got ${describe(policy)}`);
  if (p === 'ignore') return;
  const f = findNonFinite(weights);
  if (f === null) return;
  if (p === 'error') throw new WeightsError(`${source}: ${describeNonFinite(f)}; non-finite weights make every output NaN/Inf`);
  warnings.push(`${source}: ${describeNonFinite(f)}; outputs will not be finite`);
}
