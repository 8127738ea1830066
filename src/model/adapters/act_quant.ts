/**
 * Activation fake quantization per token (docs/components/fake-quant.md): the input x [N, in] of every selected
 * Linear is replaced by x̂ = dequant(quant(x)) with one scale per token (INT8 symmetric by default; src/ops/int_quant.ts),
 * the Linear runs on x̂, and the backward passes dx straight through the quantizer (or only where x was not clipped).
 * It is a mode of the Linear op's call sites (src/ops/linear.ts), not a weight transform: x changes every call.
 *
 * Sites: every projection of attention, the MLPs and experts, and MTP's eh_proj. Not lm_head (it has no Linear site;
 * the head stays in high precision, as in FP8 training), and not kv_b_proj on the absorbed attention path (folded
 * into the attention core there), so selecting kv_b_proj with attn 'absorb' is an InputError.
 */
import { InputError } from '../../errors.js';
import type { IntQuantScheme } from '../../ops/int_quant.js';
import type { ActQuantGemm } from '../../ops/linear.js';
import type { AttnImpl } from '../attention.js';
import type { ModelWeights } from '../weights.js';
import { selectModules } from './glob.js';

/** Options of activation fake quantization (`forward(ids, { actQuant })`, `lossAndGrads(batch, { actQuant })`). */
export interface ActQuantOptions {
  /** Module globs over HF names without `.weight` (Linear modules; lm_head is never quantized). */
  targets: string | readonly string[];
  /** Default `{ kind: 'int8' }`: symmetric, one scale per token; `groupSize` splits a token's features into groups. */
  scheme?: IntQuantScheme;
  /** Backward of the quantizer (default 'identity'). */
  ste?: 'identity' | 'clipped';
}

/** The Linear-site mode for `o` over the model's weights; `where` names the call in errors. */
export function actQuantGemm(weights: ModelWeights, o: ActQuantOptions, attn: AttnImpl, where: string): ActQuantGemm {
  const modules = new Set(selectModules(weights, o.targets, `${where}: actQuant targets`));
  modules.delete('lm_head');
  const scheme = o.scheme ?? { kind: 'int8' };
  if (scheme.kind !== 'int8' && scheme.kind !== 'int4') throw new InputError(`${where}: actQuant scheme kind must be 'int8' or 'int4', got ${JSON.stringify(scheme.kind)}`);
  const ste = o.ste ?? 'identity';
  if (ste !== 'identity' && ste !== 'clipped') throw new InputError(`${where}: actQuant ste must be 'identity' or 'clipped', got ${JSON.stringify(ste)}`);
  if (attn === 'absorb') {
    const kvb = [...modules].find((m) => m.endsWith('.self_attn.kv_b_proj'));
    if (kvb !== undefined) throw new InputError(`${where}: actQuant selects '${kvb}', which the absorbed attention path folds into the attention core; use attn 'naive'`);
  }
  return { kind: 'act-quant', scheme, ste, select: (name) => modules.has(name) };
}
