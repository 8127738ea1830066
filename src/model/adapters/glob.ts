/**
 * Module-name globs of the adapters (LoRA targets, fake-quant rules): `*` matches any run of characters, dots
 * included (`*.mlp.experts.*.down_proj`), `?` one character, everything else is literal; a glob matches the whole name.
 * (src/verify/glob.ts is the trace-name variant, one layer up; this one has no `:` rule.)
 */

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
