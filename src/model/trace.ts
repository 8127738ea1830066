/**
 * Tracing hook: forward and backward code reports named intermediates through it. Names are
 * HF module paths plus a role, e.g. `model.layers.3.self_attn.q_a_layernorm:out`,
 * `model.layers.3.self_attn:attn_probs`, `model.layers.3.mlp.gate:indices`. The callee must copy
 * `data` if it keeps it (the caller may reuse the buffer).
 */
export type TraceFn = (name: string, shape: readonly number[], data: Float32Array | Float64Array | Int32Array) => void;
