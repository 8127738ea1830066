/**
 * Runtime top-k override (docs/components/topk-override.md): route every token to k' experts, optionally
 * keeping g' groups, without changing the model's config.
 *
 *   group limit: keep the g' best groups (group score as configured);  I = top-k' of ŝ inside them;
 *   w = s[I] (/ Σ_{k'} s[I] if norm_topk_prob) · routed_scaling_factor
 *
 * The override is a config with `num_experts_per_tok = k'` and `topk_group = g'`, handed to every consumer of
 * the routing hyper-parameters at once (gate, MoE, balance loss, memory guards), so a forward, a training step
 * and a decode step see the same k'. k' must fit in the kept groups: k' ≤ g'·(E/G), else an InputError (the
 * official top-k over a masked row would pick −∞ experts).
 */
import { InputError } from '../errors.js';
import type { ModelConfig } from './config.js';

/** The routing fields a caller may override per call. */
export interface RoutingOverride {
  /** Experts per token k' (default: the config's num_experts_per_tok). */
  topk?: number;
  /** Groups kept per token g' (default: the config's topk_group). */
  topkGroup?: number;
}

/**
 * The config with the override applied (the same object when nothing is overridden). `where` names the call
 * in the error message, e.g. 'forward'.
 */
export function withRoutingOverride(config: ModelConfig, o: RoutingOverride, where: string): ModelConfig {
  if (o.topk === undefined && o.topkGroup === undefined) return config;
  const E = config.nRoutedExperts;
  const G = config.nGroup;
  const k = o.topk ?? config.numExpertsPerTok;
  const g = o.topkGroup ?? config.topkGroup;
  if (!Number.isInteger(k) || k < 1) throw new InputError(`${where}: topk must be a positive integer, got ${k}`);
  if (!Number.isInteger(g) || g < 1 || g > G) throw new InputError(`${where}: topkGroup must be an integer in [1, n_group = ${G}], got ${g}`);
  const room = g * (E / G);
  if (k > room) {
    throw new InputError(
      `${where}: topk ${k} does not fit in ${g} kept group(s) of n_routed_experts/n_group = ${E / G} experts (at most ${room}); ` +
        `lower topk or raise topkGroup (≤ n_group = ${G})`,
    );
  }
  if (k === config.numExpertsPerTok && g === config.topkGroup) return config;
  return { ...config, numExpertsPerTok: k, topkGroup: g };
}
