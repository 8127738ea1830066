/**
 * Token rows of a traced tensor: which elements belong to which token (b, s). The calibrated comparison measures
 * errors per token row, and leaves rows out after a routing near-tie; both need this map.
 *
 * Layouts recognised (library shapes, docs/trace-names.md), with S the positions of the tensor's layer (S for the
 * main model, S − k for MTP depth k, whose position j combines h_j with the embedding of token j + k):
 * - `[B, H, S, T]` attention scores/probabilities: row (b, s) gathers every head and key;
 * - `[B, S, …]`: row (b, s), the trailing dims;
 * - `[B·S, …]` (router tensors): row n = b·S + s;
 * - anything else: one row holding the whole tensor, with no token.
 */

/** The trace's batch size and positions of the main model. */
export interface TokenGrid {
  B: number;
  S: number;
  /** Main decoder layers (`num_hidden_layers`); layers at or beyond it are MTP depths L + k − 1. */
  L: number;
}

/** The token rows of one tensor. */
export interface RowLayout {
  rows: number;
  /** Row of each element (length numel). */
  rowOf: Int32Array;
  /** Batch row and position of each row, or −1 for a row that is not a token. */
  b: Int32Array;
  s: Int32Array;
  /** Positions per sequence in this tensor (S, or S − k for MTP depth k), 0 for the single-row layout. */
  positions: number;
  /** How rows are indexed: [b, s] (`bs`), a token row n (`n`), or one row for the whole tensor. */
  kind: 'bs' | 'n' | 'whole';
}

const LAYER = /^(?:grad\.)?model\.layers\.(\d+)[.:]/;

/**
 * Layer index of a trace name (`model.layers.3.…` → 3), −1 for the embedding, L − 1 for `model.norm`/`lm_head` (no
 * attention mixes positions after the last layer), ∞ for names it does not know.
 */
export function layerOfName(name: string, L: number): number {
  const m = LAYER.exec(name);
  if (m !== null) return Number(m[1]);
  if (name.startsWith('model.embed_tokens')) return -1;
  if (name.startsWith('model.norm') || name.startsWith('lm_head')) return L - 1;
  return Infinity;
}

/** Positions per sequence of tensors under a name: S, or S − k in MTP depth k (layer L + k − 1). */
export function positionsOfName(name: string, grid: TokenGrid): number {
  const l = layerOfName(name, grid.L);
  return Number.isInteger(l) && l >= grid.L ? grid.S - (l - grid.L + 1) : grid.S;
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** The token rows of a tensor `name` of `shape` (see the module comment). */
export function rowLayout(name: string, shape: readonly number[], grid: TokenGrid): RowLayout {
  const numel = product(shape);
  const S = positionsOfName(name, grid);
  const B = grid.B;
  // token rows r = b·S + s (a 'whole' layout has one row and no position: b = s = −1)
  const make = (rows: number, positions: number, kind: RowLayout['kind']): RowLayout => {
    const out: RowLayout = { rows, rowOf: new Int32Array(numel), b: new Int32Array(rows).fill(-1), s: new Int32Array(rows).fill(-1), positions, kind };
    if (kind !== 'whole') {
      for (let r = 0; r < rows; r++) {
        out.b[r] = Math.floor(r / S);
        out.s[r] = r % S;
      }
    }
    return out;
  };
  if (S > 0 && /:attn_(scores|probs)$/.test(name) && shape.length === 4 && shape[0] === B && shape[2] === S) {
    const [, H, , T] = shape as [number, number, number, number];
    const out = make(B * S, S, 'bs');
    for (let i = 0; i < numel; i++) {
      const s = Math.floor(i / T) % S;
      const b = Math.floor(i / (H * S * T));
      out.rowOf[i] = b * S + s;
    }
    return out;
  }
  if (S > 0 && shape.length >= 2 && shape[0] === B && shape[1] === S) {
    const out = make(B * S, S, 'bs');
    const w = product(shape.slice(2));
    for (let i = 0; i < numel; i++) out.rowOf[i] = Math.floor(i / w);
    return out;
  }
  if (S > 0 && shape.length >= 1 && shape[0] === B * S) {
    const out = make(B * S, S, 'n');
    const w = product(shape.slice(1));
    for (let i = 0; i < numel; i++) out.rowOf[i] = Math.floor(i / w);
    return out;
  }
  return make(1, 0, 'whole');
}

/**
 * The grid of a library trace: B and S from `model.embed_tokens:out` [B, S, d] (else `lm_head:out`), L from the
 * first MTP layer (`model.layers.{L}.enorm:out`) or one past the highest layer index. Null when neither tensor exists.
 */
export function gridFromTrace(names: Iterable<string>, shapeOf: (name: string) => readonly number[] | undefined): TokenGrid | null {
  const all = [...names];
  const base = shapeOf('model.embed_tokens:out') ?? shapeOf('lm_head:out');
  if (base === undefined || base.length < 2) return null;
  let L = -1;
  let maxLayer = -1;
  for (const n of all) {
    const m = /^model\.layers\.(\d+)\.enorm:out$/.exec(n);
    if (m !== null) L = L < 0 ? Number(m[1]) : Math.min(L, Number(m[1]));
    const l = LAYER.exec(n);
    if (l !== null) maxLayer = Math.max(maxLayer, Number(l[1]));
  }
  return { B: base[0]!, S: base[1]!, L: L >= 0 ? L : maxLayer + 1 };
}
