import { ShapeError } from '../errors.js';

/**
 * Tensor-name mapping between the official inference code (`inference/model.py` after
 * `convert.py`, SPEC §2.4) and the Hugging Face names this library uses, plus the HF
 * permuted-RoPE layout (SPEC §3.4). Trace names are `<module path>:<role>` and gradients
 * `grad.<weight name>`; the mapping rewrites the module path and keeps the prefix and role.
 */

/**
 * Official module/parameter name component → HF component (SPEC §2.4 step 3 and 4).
 * `bias` maps only under a router (`gate`), `scale` only as the last component.
 */
export const OFFICIAL_TO_HF_COMPONENTS: Readonly<Record<string, string>> = Object.freeze({
  embed: 'embed_tokens',
  attn: 'self_attn',
  ffn: 'mlp',
  attn_norm: 'input_layernorm',
  ffn_norm: 'post_attention_layernorm',
  wq: 'q_proj',
  wq_a: 'q_a_proj',
  q_norm: 'q_a_layernorm',
  wq_b: 'q_b_proj',
  wkv_a: 'kv_a_proj_with_mqa',
  kv_norm: 'kv_a_layernorm',
  wkv_b: 'kv_b_proj',
  wo: 'o_proj',
  w1: 'gate_proj',
  w2: 'down_proj',
  w3: 'up_proj',
  head: 'lm_head',
  scale: 'weight_scale_inv',
  bias: 'e_score_correction_bias',
});

const HF_TO_OFFICIAL_COMPONENTS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(OFFICIAL_TO_HF_COMPONENTS).map(([o, h]) => [h, o])),
);

interface SplitName {
  prefix: string; // 'grad.' or ''
  path: string[];
  role: string; // ':out' or ''
}

function splitName(name: string): SplitName {
  const prefix = name.startsWith('grad.') ? 'grad.' : '';
  const rest = name.slice(prefix.length);
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const role = colon < 0 ? '' : rest.slice(colon);
  return { prefix, path: path === '' ? [] : path.split('.'), role };
}

/**
 * Maps an official-code name to the HF name, e.g. `layers.3.attn.wkv_b` →
 * `model.layers.3.self_attn.kv_b_proj`, `layers.3.ffn.gate.bias` →
 * `model.layers.3.mlp.gate.e_score_correction_bias`, `head:out` → `lm_head:out`,
 * `grad.layers.0.ffn.w1.weight` → `grad.model.layers.0.mlp.gate_proj.weight`.
 * Names that are already HF (`model.*`, `lm_head*`) are returned unchanged.
 */
export function officialToHfName(name: string): string {
  const { prefix, path, role } = splitName(name);
  if (path.length === 0 || path[0] === 'model' || path[0] === 'lm_head') return name;
  const out = path.map((c, i) => {
    if (c === 'bias') return path[i - 1] === 'gate' ? OFFICIAL_TO_HF_COMPONENTS.bias! : c;
    if (c === 'scale') return i === path.length - 1 ? OFFICIAL_TO_HF_COMPONENTS.scale! : c;
    return OFFICIAL_TO_HF_COMPONENTS[c] ?? c;
  });
  // Everything lives under `model.` except the output head (SPEC §2.4 step 2, inverted).
  const joined = out[0] === 'lm_head' ? out.join('.') : `model.${out.join('.')}`;
  return `${prefix}${joined}${role}`;
}

/** The inverse of {@link officialToHfName}: `model.layers.3.self_attn.kv_b_proj` → `layers.3.attn.wkv_b`. */
export function hfToOfficialName(name: string): string {
  const { prefix, path, role } = splitName(name);
  let p = path;
  if (p[0] === 'model') p = p.slice(1);
  else if (p[0] !== 'lm_head') return name;
  const out = p.map((c) => HF_TO_OFFICIAL_COMPONENTS[c] ?? c);
  return `${prefix}${out.join('.')}${role}`;
}

/** Trace roles whose last axis is a RoPE vector (length qk_rope_head_dim) in the interleaved layout. */
export const ROPE_LAYOUT_GLOBS: readonly string[] = Object.freeze(['*:q_pe', '*:k_pe']);

/**
 * Applies the HF de-interleave permutation P to the last axis (length R, even):
 * `y = [x_0, x_2, …, x_{R−2}, x_1, x_3, …, x_{R−1}]` (SPEC §3.4). A tensor in the official
 * interleaved layout becomes the HF (`rope_interleave = true`) layout. Returns a new array.
 */
export function ropeDeinterleave(data: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const r = shape.length === 0 ? 0 : shape[shape.length - 1]!;
  if (r === 0 || r % 2 !== 0) {
    throw new ShapeError(`RoPE layout permutation needs an even last axis, got shape [${shape.join(', ')}]`);
  }
  const out = new Float64Array(data.length);
  const half = r / 2;
  for (let base = 0; base < data.length; base += r) {
    for (let i = 0; i < half; i++) {
      out[base + i] = data[base + 2 * i]!;
      out[base + half + i] = data[base + 2 * i + 1]!;
    }
  }
  return out;
}
