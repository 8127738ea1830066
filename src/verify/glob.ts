/**
 * Name globs for trace filters and per-pattern tolerances. `*` matches any run of characters
 * (dots and colons included, so `model.layers.3.*` selects every tensor of layer 3), `?` one
 * character; everything else is literal. A glob must match the whole name. A `.` right before a
 * `*` also matches `:`, so `model.layers.3.*` includes the block's own `model.layers.3:out`.
 */

/** Compiles a glob to an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let src = '';
  const chars = [...glob];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '.' && chars[i + 1] === '*') src += '[.:]';
    else if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

/** A predicate that is true when `name` matches at least one of `globs` (or always, for none). */
export function globMatcher(globs: string | readonly string[] | undefined): (name: string) => boolean {
  const list = typeof globs === 'string' ? [globs] : (globs ?? []);
  if (list.length === 0) return () => true;
  const res = list.map(globToRegExp);
  return (name) => res.some((re) => re.test(name));
}
