/**
 * Module selection for the adapters (LoRA targets, fake-quant rules, activation fake-quant sites): the Linear
 * modules of a weights map, and globs over their names. `*` matches any run of characters, dots included
 * (`*.mlp.experts.*.down_proj`), `?` one character, everything else is literal; a glob matches the whole name.
 * (src/verify/glob.ts is the trace-name variant, one layer up; this one has no `:` rule.)
 */
import { InputError } from '../../errors.js';
import type { ModelWeights } from '../weights.js';

/** The anchored regular expression of `glob`. */
export function moduleGlobRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

/** The globs of a `string | string[]` option, as a list. */
export function globList(globs: string | readonly string[]): string[] {
  return typeof globs === 'string' ? [globs] : [...globs];
}

/**
 * The HF module names (weight name without `.weight`) of the Linear layers in `weights`: every 2-D `*.weight`
 * except the embedding and the router (`mlp.gate`, not an nn.Linear in the HF model). These are what the adapters
 * can target.
 */
export function linearModules(weights: ModelWeights): string[] {
  const out: string[] = [];
  for (const [name, t] of weights) {
    if (!name.endsWith('.weight') || t.shape.length !== 2) continue;
    if (name === 'model.embed_tokens.weight' || name.endsWith('.mlp.gate.weight')) continue;
    out.push(name.slice(0, -'.weight'.length));
  }
  return out;
}

/**
 * The Linear modules of `weights` matched by at least one glob, in the weights' order. A glob that matches no
 * Linear module is an InputError naming it (`what` names the option).
 */
export function selectModules(weights: ModelWeights, globs: string | readonly string[], what: string): string[] {
  const list = globList(globs);
  if (list.length === 0) throw new InputError(`${what}: no target globs given`);
  const modules = linearModules(weights);
  const res = list.map(moduleGlobRegExp);
  res.forEach((re, i) => {
    if (!modules.some((m) => re.test(m))) {
      throw new InputError(`${what}: glob '${list[i]}' matches no Linear module (module names are HF weight names without '.weight', e.g. '${modules[0] ?? 'model.layers.0.self_attn.o_proj'}')`);
    }
  });
  return modules.filter((m) => res.some((re) => re.test(m)));
}
