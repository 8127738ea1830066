import { InputError } from '../errors.js';
import type { TokenBatch } from '../model/model.js';
import { Random } from '../random.js';

/** Byte-level token ids (vocab 256) of a text: its UTF-8 bytes. */
export function bytesToTokens(text: string | Uint8Array): Int32Array {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  return Int32Array.from(bytes);
}

/** Where a {@link TokenStream} is: enough to resume it exactly. */
export interface TokenStreamState {
  /** Sequential mode: the next window's start offset. */
  offset: number;
  /** Sequential mode: completed passes over the corpus. */
  epoch: number;
  /** Random mode: the PRNG state (four 32-bit words); null in sequential mode. */
  rng: [number, number, number, number] | null;
}

/** Options of a {@link TokenStream}. */
export interface TokenStreamOptions {
  /** Sequences per batch. */
  batchSize: number;
  /** Positions per sequence (each window holds T+1 tokens). */
  seqLen: number;
  /**
   * `'sequential'` (default): consecutive windows with stride T (neighbouring windows share one
   * token), wrapping to offset 0 when the next window would pass the end. `'random'`: each
   * window starts at a uniform offset drawn from a seeded {@link Random}.
   */
  order?: 'sequential' | 'random';
  /** Seed of the random order (default 0). */
  seed?: number;
}

/** A deterministic, resumable stream of [B, T+1] batches over a token corpus. */
export class TokenStream {
  readonly tokens: Int32Array;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly order: 'sequential' | 'random';
  private offset = 0;
  private epoch = 0;
  private rng: Random | null;

  constructor(tokens: Int32Array, opts: TokenStreamOptions) {
    const { batchSize, seqLen } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`TokenStream: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new InputError(`TokenStream: seqLen must be a positive integer, got ${seqLen}`);
    if (tokens.length < seqLen + 1) throw new InputError(`TokenStream: corpus has ${tokens.length} tokens, a window needs seqLen+1 = ${seqLen + 1}`);
    this.tokens = tokens;
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.order = opts.order ?? 'sequential';
    this.rng = this.order === 'random' ? new Random(opts.seed ?? 0) : null;
  }

  /** The next batch: B windows of T+1 ids, row-major [B, T+1] (inputs ids[:, :T], targets ids[:, 1:]). */
  next(): TokenBatch {
    const { batchSize: B, seqLen: T } = this;
    const ids = new Int32Array(B * (T + 1));
    for (let b = 0; b < B; b++) {
      const start = this.nextStart();
      ids.set(this.tokens.subarray(start, start + T + 1), b * (T + 1));
    }
    return { ids, B, T };
  }

  /** Start offset of the next window (advances the position). */
  private nextStart(): number {
    const T = this.seqLen;
    let start: number;
    if (this.rng !== null) start = this.rng.int(this.tokens.length - T);
    else {
      if (this.offset + T + 1 > this.tokens.length) {
        this.offset = 0;
        this.epoch++;
      }
      start = this.offset;
      this.offset += T;
    }
    return start;
  }

  /** The position of the stream (copy). */
  getState(): TokenStreamState {
    return { offset: this.offset, epoch: this.epoch, rng: this.rng === null ? null : this.rng.getState() };
  }

  /** Resumes at a position from {@link getState}. */
  setState(state: TokenStreamState): void {
    if (!Number.isInteger(state.offset) || state.offset < 0 || state.offset > this.tokens.length) {
      throw new InputError(`TokenStream.setState: offset ${state.offset} outside the corpus of ${this.tokens.length} tokens`);
    }
    if ((state.rng === null) !== (this.rng === null)) {
      throw new InputError(`TokenStream.setState: state is for ${state.rng === null ? 'sequential' : 'random'} order, stream is ${this.order}`);
    }
    this.offset = state.offset;
    this.epoch = state.epoch;
    if (state.rng !== null) this.rng = Random.fromState(state.rng);
  }
}
