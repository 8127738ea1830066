/**
 * Oniguruma (Ruby syntax, UTF-8) regular expressions, as used by the Rust `tokenizers` library
 * in tokenizer.json `Split`/`Replace` patterns, translated to an equivalent JavaScript `RegExp`
 * with the `v` flag. The translation is a small recursive-descent rewrite, not a copy:
 *
 * | Oniguruma                | meaning in Oniguruma                     | JavaScript emitted                    |
 * |--------------------------|------------------------------------------|---------------------------------------|
 * | `\s` `\S`                | Unicode White_Space (U+0085 yes, U+FEFF no) | `\p{White_Space}` (JS `\s` differs)  |
 * | `\d` `\D`                | Unicode decimal digit (Nd)               | `\p{Nd}` (JS `\d` is ASCII only)      |
 * | `\w` `\W`                | Letter, Mark, Nd, Pc                     | `[\p{L}\p{M}\p{Nd}\p{Pc}]`            |
 * | `\h` `\H`                | hexadecimal digit                        | `[0-9A-Fa-f]`                         |
 * | `\b` `\B`                | Unicode word boundary                    | look-arounds over the `\w` class      |
 * | `.`                      | any char but `\n`                        | `[^\n]` (JS `.` also stops at `\r`)   |
 * | `^` `$`                  | line anchors (always multi-line)         | `(?<![^\n])`, `(?![^\n])`             |
 * | `\A` `\z` `\Z`           | string anchors                           | `(?<![^])`, `(?![^])`, `(?=\n?(?![^]))`|
 * | `(?i:…)` `(?i)`          | case-insensitive group                   | letters expanded to `[xX]` classes    |
 * | `(?>…)`, `X*+ X++ X?+`   | atomic group / possessive quantifier     | `(?=(?<aN>…))\k<aN>`                  |
 * | `{,n}`                   | `{0,n}`                                  | `{0,n}`                               |
 * | `\p{^L}`, `\pL`          | negated / short property                 | `\P{L}`, `\p{L}`                      |
 * | `[a&&[^b]]`, `[[x]]`     | class intersection / nesting             | `v`-flag set operations               |
 *
 * Anything else that has no faithful translation (back-references, `\K`, `\G`, conditionals,
 * absent operators, `(?x)`) raises {@link UnsupportedError}, never a silent approximation.
 */
import { UnsupportedError } from '../errors.js';
import { preview } from '../preview.js';
import { NEWER_THAN_ONIGURUMA } from './unicode_compat.js';

/** Code points Oniguruma (Unicode 16 in the pinned binding) sees as unassigned, as a nested class. */
const NEW = `[${NEWER_THAN_ONIGURUMA}]`;
/** A property class restricted to the code points Oniguruma knows (unassigned ones join Cn/C). */
function prop(name: string): string {
  const unassignedIncluded = /^(?:Cn|C|Other|Unassigned|General_Category=(?:Cn|C|Other|Unassigned)|gc=(?:Cn|C))$/.test(name);
  return unassignedIncluded ? `[\\p{${name}}${NEW}]` : `[\\p{${name}}--${NEW}]`;
}
const WORD = `[[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]--${NEW}]`;
const NOT_WORD = `[^${WORD}]`;

/** True for a code point assigned in Unicode 17 but unknown to the Rust library's Unicode 16 tables. */
export const isNewerThanRust: (cp: number) => boolean = (() => {
  const re = new RegExp(`^${NEW}$`, 'v');
  return (cp: number) => cp >= 0x880 && re.test(String.fromCodePoint(cp));
})();

/** Rust regex-crate `\\w` (Alphabetic, M, Nd, Pc, Join_Control) restricted to Unicode 16, as `v`-flag class. */
export const RUST_WORD_CLASS = `[[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]--${NEW}]`;

/** Escape a code point so that it is a literal inside or outside a `v`-flag class. */
function lit(cp: number): string {
  if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)) {
    return String.fromCodePoint(cp);
  }
  return `\\u{${cp.toString(16)}}`;
}

/** The code points equal to `cp` under simple case folding (as Oniguruma's `(?i)` uses). */
function caseVariants(cp: number): number[] {
  const c = String.fromCodePoint(cp);
  const out = new Set<number>([cp]);
  for (const v of [c.toLowerCase(), c.toUpperCase()]) {
    if ([...v].length === 1) out.add(v.codePointAt(0)!);
  }
  return [...out];
}

/** Escape a string so that it matches itself literally (Rust `regex::escape` equivalent). */
export function escapeRegexLiteral(s: string): string {
  let out = '';
  for (const ch of s) out += lit(ch.codePointAt(0)!);
  return out;
}

class Translator {
  private i = 0;
  private atomicCount = 0;
  constructor(private readonly src: string) {}

  private fail(what: string): never {
    throw new UnsupportedError(`regex /${this.src}/: ${what} (at offset ${this.i}) has no exact JavaScript translation`);
  }

  private peek(k = 0): string {
    return this.src[this.i + k] ?? '';
  }

  private readCodePoint(): number {
    const cp = this.src.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return cp;
  }

  translate(): string {
    const out = this.alternation(false);
    if (this.i < this.src.length) this.fail(`unbalanced ')'`);
    return out;
  }

  /** alternation := sequence ('|' sequence)* ; stops at ')' or end. */
  private alternation(ci: boolean): string {
    const parts: string[] = [];
    let flags = { ci };
    parts.push(this.sequence(flags));
    while (this.peek() === '|') {
      this.i++;
      flags = { ci };
      parts.push(this.sequence(flags));
    }
    return parts.join('|');
  }

  /** sequence := (atom quantifier?)* ; `(?i)` inside changes `flags.ci` for the rest of it. */
  private sequence(flags: { ci: boolean }): string {
    let out = '';
    while (this.i < this.src.length && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.atom(flags);
      if (atom === null) continue;
      out += this.quantified(atom);
    }
    return out;
  }

  private quantified(atom: string): string {
    let q = '';
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') {
      this.i++;
      q = c;
    } else if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.src.slice(this.i));
      if (m && (m[1] !== '' || m[3] !== '')) {
        this.i += m[0].length;
        q = `{${m[1] === '' ? '0' : m[1]}${m[2]}${m[3]}}`;
      }
    }
    if (q === '') return atom;
    if (this.peek() === '?') {
      this.i++;
      return `(?:${atom})${q}?`;
    }
    if (this.peek() === '+') {
      this.i++;
      // Ruby syntax: `{n,m}+` is NOT possessive, it is a greedy repeat of the interval.
      if (q.startsWith('{')) return `(?:(?:${atom})${q})+`;
      return this.atomic(`(?:${atom})${q}`);
    }
    return `(?:${atom})${q}`;
  }

  /** Atomic group emulation: a look-ahead captures what the greedy match takes, then consume it. */
  private atomic(body: string): string {
    const name = `__atomic${this.atomicCount++}`;
    return `(?=(?<${name}>${body}))\\k<${name}>`;
  }

  private atom(flags: { ci: boolean }): string | null {
    const c = this.peek();
    if (c === '(') return this.group(flags);
    if (c === '[') return this.charClass(flags.ci);
    if (c === '\\') return this.escape(false, flags.ci);
    if (c === '.') {
      this.i++;
      return '[^\\n]';
    }
    if (c === '^') {
      this.i++;
      return '(?<![^\\n])';
    }
    if (c === '$') {
      this.i++;
      return '(?![^\\n])';
    }
    if (c === '*' || c === '+' || c === '?') this.fail(`quantifier '${c}' with nothing to repeat`);
    const cp = this.readCodePoint();
    return this.literal(cp, flags.ci);
  }

  private literal(cp: number, ci: boolean): string {
    if (!ci) return lit(cp);
    const vs = caseVariants(cp);
    return vs.length === 1 ? lit(cp) : `[${vs.map(lit).join('')}]`;
  }

  private group(flags: { ci: boolean }): string | null {
    this.i++; // '('
    let open = '(?:';
    let ci = flags.ci;
    let atomic = false;
    if (this.peek() === '?') {
      const rest = this.src.slice(this.i + 1);
      if (rest.startsWith(':')) {
        this.i += 2;
      } else if (rest.startsWith('=') || rest.startsWith('!')) {
        open = `(?${rest[0]}`;
        this.i += 2;
      } else if (rest.startsWith('<=') || rest.startsWith('<!')) {
        open = `(?${rest.slice(0, 2)}`;
        this.i += 3;
      } else if (rest.startsWith('>')) {
        atomic = true;
        this.i += 2;
      } else if (rest.startsWith('#')) {
        const end = this.src.indexOf(')', this.i);
        if (end < 0) this.fail('unterminated comment');
        this.i = end + 1;
        return null;
      } else if (/^<[A-Za-z_]\w*>/.test(rest) || /^P<[A-Za-z_]\w*>/.test(rest)) {
        const m = /^P?<([A-Za-z_]\w*)>/.exec(rest)!;
        open = `(?<${m[1]}>`;
        this.i += 1 + m[0].length;
      } else {
        const m = /^([imx]*)(?:-([imx]*))?([:)])/.exec(rest);
        if (!m) this.fail(`group construct '(?${rest.slice(0, 2)}'`);
        const on = m[1]!;
        const off = m[2] ?? '';
        if (on.includes('x') || off.includes('x')) this.fail('extended mode (?x)');
        // Ruby `m` is dot-all; supporting it would change '.' translation: reject rather than guess.
        if (on.includes('m') || off.includes('m')) this.fail('dot-all mode (?m)');
        if (on.includes('i')) ci = true;
        if (off.includes('i')) ci = false;
        this.i += 1 + m[0].length;
        if (m[3] === ')') {
          // `(?i)`: applies to the rest of the enclosing group.
          flags.ci = ci;
          return null;
        }
      }
    } else {
      open = '(';
    }
    const body = this.alternation(ci);
    if (this.peek() !== ')') this.fail("missing ')'");
    this.i++;
    if (atomic) return this.atomic(body);
    return `${open}${body})`;
  }

  /** Parses `\x` outside (inClass=false) or inside a class; returns JS text. */
  private escape(inClass: boolean, ci: boolean): string {
    this.i++; // '\'
    const c = this.peek();
    this.i++;
    switch (c) {
      case 's':
        return '\\p{White_Space}';
      case 'S':
        return '\\P{White_Space}';
      case 'd':
        return prop('Nd');
      case 'D':
        return `[^${prop('Nd')}]`;
      case 'w':
        return WORD;
      case 'W':
        return NOT_WORD;
      case 'h':
        return inClass ? '0-9A-Fa-f' : '[0-9A-Fa-f]';
      case 'H':
        return '[^0-9A-Fa-f]';
      case 'n':
        return '\\n';
      case 'r':
        return '\\r';
      case 't':
        return '\\t';
      case 'f':
        return '\\f';
      case 'v':
        return '\\v';
      case 'a':
        return lit(7);
      case 'e':
        return lit(0x1b);
      case 'p':
      case 'P':
        return this.property(c === 'P');
      case 'x':
        return this.literal(this.hex(), ci);
      case 'u': {
        const h = this.src.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('bad \\u escape');
        this.i += 4;
        return this.literal(parseInt(h, 16), ci);
      }
      case '0': {
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.i))!;
        this.i += m[0].length;
        return lit(parseInt(m[0] || '0', 8));
      }
      default:
        break;
    }
    if (!inClass) {
      if (c === 'b') return `(?:(?<=${WORD})(?!${WORD})|(?<!${WORD})(?=${WORD}))`;
      if (c === 'B') return `(?:(?<=${WORD})(?=${WORD})|(?<!${WORD})(?!${WORD}))`;
      if (c === 'A') return '(?<![^])';
      if (c === 'z') return '(?![^])';
      if (c === 'Z') return '(?=\\n?(?![^]))';
    }
    if (/[A-Za-z1-9]/.test(c) || c === '') this.fail(`escape '\\${c}'`);
    this.i--;
    return this.literal(this.readCodePoint(), ci);
  }

  private hex(): number {
    if (this.peek() === '{') {
      const end = this.src.indexOf('}', this.i);
      const h = this.src.slice(this.i + 1, end);
      if (end < 0 || !/^[0-9a-fA-F]{1,8}$/.test(h)) this.fail('bad \\x{…} escape');
      this.i = end + 1;
      return parseInt(h, 16);
    }
    const m = /^[0-9a-fA-F]{1,2}/.exec(this.src.slice(this.i));
    if (!m) this.fail('bad \\x escape');
    this.i += m[0].length;
    return parseInt(m[0], 16);
  }

  private property(negated: boolean): string {
    let name: string;
    if (this.peek() === '{') {
      const end = this.src.indexOf('}', this.i);
      if (end < 0) this.fail('unterminated \\p{');
      name = this.src.slice(this.i + 1, end);
      this.i = end + 1;
    } else {
      name = this.readCodePointString();
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    try {
      new RegExp(`\\p{${name}}`, 'v');
    } catch {
      this.fail(`Unicode property '${name}'`);
    }
    return negated ? `[^${prop(name)}]` : prop(name);
  }

  private readCodePointString(): string {
    return String.fromCodePoint(this.readCodePoint());
  }

  /** `[...]` with ranges, negation, nested classes and `&&` intersection, emitted for the `v` flag. */
  private charClass(ci: boolean): string {
    this.i++; // '['
    let negated = false;
    if (this.peek() === '^') {
      negated = true;
      this.i++;
    }
    const operands: string[] = [];
    let cur = '';
    let first = true;
    for (;;) {
      if (this.i >= this.src.length) this.fail("missing ']'");
      const c = this.peek();
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      if (c === '&' && this.peek(1) === '&') {
        this.i += 2;
        operands.push(cur);
        cur = '';
        continue;
      }
      if (c === '[') {
        if (this.src.startsWith('[:', this.i)) this.fail('POSIX bracket expression');
        cur += this.charClass(ci);
        continue;
      }
      let lo: number | null;
      let item: string;
      if (c === '\\') {
        const before = this.i;
        item = this.escape(true, false);
        lo = this.singleCodePoint(before);
      } else {
        lo = this.readCodePoint();
        item = lit(lo);
      }
      if (lo !== null && this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== '') {
        this.i++;
        let hi: number | null;
        if (this.peek() === '\\') {
          const before = this.i;
          this.escape(true, false);
          hi = this.singleCodePoint(before);
        } else if (this.peek() === '[') {
          this.fail('range ending in a class');
        } else {
          hi = this.readCodePoint();
        }
        if (hi === null) this.fail('range with a class endpoint');
        cur += this.range(lo, hi, ci);
        continue;
      }
      if (lo !== null && ci) {
        cur += caseVariants(lo).map(lit).join('');
        continue;
      }
      cur += item;
    }
    operands.push(cur);
    const body = operands.length === 1 ? operands[0]! : operands.map((o) => `[${o}]`).join('&&');
    return `[${negated ? '^' : ''}${body}]`;
  }

  /** The code point denoted by the escape at `start` if it is a single character, else null. */
  private singleCodePoint(start: number): number | null {
    const text = this.src.slice(start, this.i);
    const m = /^\\(?:x\{([0-9a-fA-F]+)\}|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|0([0-7]{0,2})|([nrtfvae])|([^A-Za-z0-9]))$/.exec(text);
    if (!m) return null;
    if (m[1] ?? m[2] ?? m[3]) return parseInt((m[1] ?? m[2] ?? m[3])!, 16);
    if (m[4] !== undefined) return parseInt(m[4] || '0', 8);
    if (m[5]) return { n: 10, r: 13, t: 9, f: 12, v: 11, a: 7, e: 27 }[m[5] as 'n']!;
    return m[6]!.codePointAt(0)!;
  }

  private range(lo: number, hi: number, ci: boolean): string {
    if (hi < lo) this.fail('range out of order');
    let out = `${lit(lo)}-${lit(hi)}`;
    if (ci) {
      const isAsciiLower = lo >= 0x61 && hi <= 0x7a;
      const isAsciiUpper = lo >= 0x41 && hi <= 0x5a;
      if (isAsciiLower) out += `${lit(lo - 32)}-${lit(hi - 32)}`;
      else if (isAsciiUpper) out += `${lit(lo + 32)}-${lit(hi + 32)}`;
      else if (caseVariants(lo).length > 1 || caseVariants(hi).length > 1) this.fail('case-insensitive non-ASCII range');
    }
    return out;
  }
}

/** Translate an Oniguruma pattern (as written in tokenizer.json) to JavaScript `v`-flag source. */
export function translateOnigRegex(pattern: string): string {
  return new Translator(pattern).translate();
}

/** Compile an Oniguruma pattern to a global, sticky-free JavaScript `RegExp` with the `v` flag. */
export function compileOnigRegex(pattern: string): RegExp {
  const src = translateOnigRegex(pattern);
  try {
    return new RegExp(src, 'gv');
  } catch (e) {
    throw new UnsupportedError(`regex /${pattern}/: translated form /${src}/ rejected by JavaScript: ${(e as Error).message}`);
  }
}

/**
 * Visit the match spans of `re` (global) over `text` as the Rust `onig` crate's `find_iter`
 * yields them: leftmost matches, scanning on after each; an empty match right where the previous
 * match ended is skipped (one code point further), exactly like `onig::FindMatches`.
 * `visit(start, end)` gets UTF-16 indices.
 */
export function forEachMatch(re: RegExp, text: string, visit: (start: number, end: number) => void): void {
  re.lastIndex = 0;
  let lastEnd = -1;
  for (;;) {
    const m = re.exec(text);
    if (m === null) return;
    const s = m.index;
    const e = s + m[0].length;
    if (s < e) {
      visit(s, e);
      lastEnd = e;
      continue;
    }
    // An empty match advances the scan by one code point.
    if (e !== lastEnd) {
      visit(s, e);
      lastEnd = e;
    }
    if (e >= text.length) return;
    const cp = text.codePointAt(e)!;
    re.lastIndex = e + (cp > 0xffff ? 2 : 1);
  }
}

/** {@link forEachMatch} collected as a flat array [start0, end0, start1, end1, ...]. */
export function findAllMatches(re: RegExp, text: string): number[] {
  const out: number[] = [];
  forEachMatch(re, text, (s, e) => out.push(s, e));
  return out;
}

/** Replace every match of `re` by `content` (Rust `NormalizedString::replace` over `find_matches`). */
export function replaceAll(text: string, re: RegExp, content: string): string {
  const m = findAllMatches(re, text);
  if (m.length === 0) return text;
  let out = '';
  let prev = 0;
  for (let k = 0; k < m.length; k += 2) {
    out += text.slice(prev, m[k]) + content;
    prev = m[k + 1]!;
  }
  return out + text.slice(prev);
}

/**
 * Compile a tokenizer.json pattern, `{"String": "literal"}` or `{"Regex": "oniguruma source"}` (or a bare
 * string literal); `where` names the component for error messages.
 */
export function compileJsonPattern(p: unknown, where: string): RegExp {
  const o = p as Record<string, unknown> | null;
  if (o !== null && typeof o === 'object' && typeof o['String'] === 'string') {
    return new RegExp(escapeRegexLiteral(o['String']), 'gv');
  }
  if (o !== null && typeof o === 'object' && typeof o['Regex'] === 'string') return compileOnigRegex(o['Regex']);
  if (typeof p === 'string') return new RegExp(escapeRegexLiteral(p), 'gv');
  throw new UnsupportedError(`${where}: pattern ${preview(p)} is neither {"String": …} nor {"Regex": …}`);
}
