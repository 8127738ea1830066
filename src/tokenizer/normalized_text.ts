/**
 * Offset tracking: a port of Rust `tokenizers` `NormalizedString` alignment bookkeeping, used
 * only by {@link Tokenizer.encodeWithOffsets} (the plain `encode` path never builds it).
 *
 * Rust keeps, for every BYTE of the normalized string, the (start, end) byte range of the
 * original string it came from. All bytes of one normalized char always share one alignment,
 * so we keep it per UTF-16 unit (both halves of a surrogate pair share it) and the indices the
 * Rust code computes in bytes are computed here in units of the same chars. Alignments are stored
 * ABSOLUTE (bytes into the whole input); Rust stores them relative to the slice's
 * `original_shift`, which is the same thing shifted, except for the `(0, 0)` it gives an inserted
 * char at the very start: that is `(shift, shift)` here.
 */
import { UnsupportedError } from '../errors.js';

/** UTF-8 length of a code point. */
function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** A transformation stream: flat pairs (code point, change) as Rust's `transform` takes them. */
export type Changes = number[];

/** Normalized text with per-unit original byte ranges (Rust `NormalizedString`). */
export class NormalizedText {
  /**
   * @param text the normalized text
   * @param align for UTF-16 unit i: original bytes [align[2i], align[2i+1]), absolute
   * @param shift `original_shift`: absolute byte offset where this piece's original starts
   * @param originalLength byte length of this piece's original
   */
  constructor(
    readonly text: string,
    readonly align: Int32Array,
    readonly shift: number,
    readonly originalLength: number,
  ) {}

  /** The input itself: every unit aligned to the bytes of its own char. */
  static fromOriginal(s: string): NormalizedText {
    const align = new Int32Array(2 * s.length);
    let b = 0;
    for (let i = 0; i < s.length; ) {
      const cp = s.codePointAt(i)!;
      const n = utf8Length(cp);
      const w = cp > 0xffff ? 2 : 1;
      for (let k = 0; k < w; k++) {
        align[2 * (i + k)] = b;
        align[2 * (i + k) + 1] = b + n;
      }
      b += n;
      i += w;
    }
    return new NormalizedText(s, align, 0, b);
  }

  /** Rust `offsets_original().0 == 0`: this piece starts at the beginning of the input. */
  get atStart(): boolean {
    return this.shift === 0;
  }

  /** Original byte range [start, end) of normalized units [a, b), a < b (Rust `expand_alignments`). */
  originalRange(a: number, b: number): [number, number] {
    return [this.align[2 * a]!, this.align[2 * b - 1]!];
  }

  /** Rust `slice(Range::Normalized(a..b))` for a non-empty unit range. */
  slice(a: number, b: number): NormalizedText {
    const [s, e] = this.originalRange(a, b);
    return new NormalizedText(this.text.slice(a, b), this.align.subarray(2 * a, 2 * b), s, e - s);
  }

  /**
   * Rust `convert_offsets(Range::Original(..))`: the normalized unit range covering this piece's
   * whole original, or null (then Rust's `transform` does nothing).
   */
  private fullNormalizedRange(): [number, number] | null {
    const len = this.originalLength;
    if (len === 0) return [0, 0]; // empty target: Rust returns it unchanged
    let start = -1;
    let end = -1;
    for (let i = 0; i < this.text.length; i++) {
      const s = this.align[2 * i]! - this.shift;
      const e = this.align[2 * i + 1]! - this.shift;
      if (len < e) break; // take_while(target.end >= alignment.1)
      if (start < 0 && s >= 0 && s !== e) start = i; // "don't update if width == 0"
      end = i + 1;
    }
    if (start >= 0 && end >= 0) return [start, end];
    if (start >= 0) return [start, start];
    if (end >= 0) return [end, end];
    return null;
  }

  /**
   * Rust `transform_range(Range::Normalized(a..b), dest, initialOffset)`: replace units [a, b)
   * by the chars of `dest`; change 0 replaces the next old char (takes its alignment), +1 is a
   * new char (takes the previous old char's alignment), −N replaces and removes N more old chars.
   */
  transformRange(a: number, b: number, dest: Changes, initialOffset: number): NormalizedText {
    const old = this.text;
    const A = this.align;
    let pos = a; // next old char not yet consumed (units)
    const take = () => {
      if (pos >= b) return;
      pos += old.codePointAt(pos)! > 0xffff ? 2 : 1;
    };
    for (let k = 0; k < initialOffset; k++) take();
    let out = '';
    const al: number[] = [];
    for (let k = 0; k < dest.length; k += 2) {
      const cp = dest[k]!;
      const change = dest[k + 1]!;
      const idx = pos;
      let s: number;
      let e: number;
      if (change > 0) {
        if (idx < 1) {
          s = this.shift;
          e = this.shift;
        } else {
          s = A[2 * (idx - 1)]!;
          e = A[2 * (idx - 1) + 1]!;
        }
      } else {
        if (idx >= old.length) throw new UnsupportedError(`offset tracking: transformation replaces a char past the end of ${JSON.stringify(old)} (Rust would panic here)`);
        s = A[2 * idx]!;
        e = A[2 * idx + 1]!;
        take();
        for (let r = 0; r < -change; r++) take();
      }
      const ch = String.fromCodePoint(cp);
      for (let u = 0; u < ch.length; u++) al.push(s, e);
      out += ch;
    }
    const align = new Int32Array(2 * a + al.length + 2 * (old.length - b));
    align.set(A.subarray(0, 2 * a), 0);
    align.set(al, 2 * a);
    align.set(A.subarray(2 * b), 2 * a + al.length);
    return new NormalizedText(old.slice(0, a) + out + old.slice(b), align, this.shift, this.originalLength);
  }

  /** Rust `transform(dest, initialOffset)` over the whole piece (`Range::Original(..)`). */
  transform(dest: Changes, initialOffset: number): NormalizedText {
    const r = this.fullNormalizedRange();
    return r === null ? this : this.transformRange(r[0], r[1], dest, initialOffset);
  }

  /** Rust `prepend(s)`: the new chars and the first char all take the first char's alignment. */
  prepend(p: string): NormalizedText {
    if (this.text.length === 0) return this;
    const first = this.text.codePointAt(0)!;
    const dest: Changes = [];
    let i = 0;
    for (const ch of p) dest.push(ch.codePointAt(0)!, i++ === 0 ? 0 : 1);
    dest.push(first, 1);
    return this.transformRange(0, first > 0xffff ? 2 : 1, dest, 0);
  }

  /**
   * Rust `replace(pattern, content)` given the match spans [s0, e0, s1, e1, ...] (units): every
   * char of `content` takes the alignment of the LAST char of its match ((shift, shift) for an
   * empty match at 0), as Rust's inlined transform does.
   */
  replace(matches: number[], content: string): NormalizedText {
    if (matches.length === 0) return this;
    const A = this.align;
    const old = this.text;
    let out = '';
    const al: number[] = [];
    let last = 0;
    for (let k = 0; k < matches.length; k += 2) {
      const s = matches[k]!;
      const e = matches[k + 1]!;
      out += old.slice(last, s);
      for (let i = 2 * last; i < 2 * s; i++) al.push(A[i]!);
      const as = e < 1 ? this.shift : A[2 * (e - 1)]!;
      const ae = e < 1 ? this.shift : A[2 * (e - 1) + 1]!;
      for (let u = 0; u < content.length; u++) al.push(as, ae);
      out += content;
      last = e;
    }
    out += old.slice(last);
    for (let i = 2 * last; i < A.length; i++) al.push(A[i]!);
    return new NormalizedText(out, Int32Array.from(al), this.shift, this.originalLength);
  }

  /** Rust `filter(keep)`: kept chars keep their alignment, removed ones vanish. */
  filter(keep: (cp: number) => boolean): NormalizedText {
    let removed = 0;
    let removedStart = 0;
    let last = -1;
    const dest: Changes = [];
    for (const ch of this.text) {
      const cp = ch.codePointAt(0)!;
      if (keep(cp)) {
        if (last >= 0) dest.push(last, -removed);
        else removedStart = removed;
        last = cp;
        removed = 0;
      } else removed++;
    }
    if (last >= 0) dest.push(last, -removed);
    return this.transform(dest, removedStart);
  }

  /** Rust `lowercase()`: each char's lower-case chars, the first replacing it, the others new. */
  lowercase(): NormalizedText {
    const dest: Changes = [];
    for (const ch of this.text) {
      let i = 0;
      for (const l of ch.toLowerCase()) dest.push(l.codePointAt(0)!, i++ === 0 ? 0 : 1);
    }
    return this.transform(dest, 0);
  }

  /**
   * Rust `lrstrip(left, right)`, including its index quirk: the trailing-removal change is put on
   * the char whose CHAR index equals `byteLength − trailing − 1`.
   */
  strip(left: boolean, right: boolean, isWhitespace: (cp: number) => boolean): NormalizedText {
    const cps = Array.from(this.text, (c) => c.codePointAt(0)!);
    let leading = 0;
    if (left) while (leading < cps.length && isWhitespace(cps[leading]!)) leading++;
    let trailing = 0;
    if (right) while (trailing < cps.length && isWhitespace(cps[cps.length - 1 - trailing]!)) trailing++;
    if (leading === 0 && trailing === 0) return this;
    let byteLength = 0;
    for (const cp of cps) byteLength += utf8Length(cp);
    const count = cps.length;
    const dest: Changes = [];
    cps.forEach((cp, i) => {
      if (i < leading || i >= count - trailing) return;
      dest.push(cp, i === byteLength - trailing - 1 ? -trailing : 0);
    });
    return this.transform(dest, leading);
  }
}

/**
 * Rust `BytesToCharOffsetConverter` over the whole (well-formed) input: byte offsets → char
 * (code point) offsets, with its fall-backs kept: an end past the last byte maps to one char after
 * the char holding the byte before it, and a start at or past the end leaves the pair in bytes.
 */
export class ByteToCharConverter {
  private readonly map: Int32Array;

  constructor(s: string) {
    let bytes = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
    }
    this.map = new Int32Array(bytes);
    let b = 0;
    let ci = 0;
    for (let i = 0; i < s.length; ) {
      const cp = s.codePointAt(i)!;
      const n = utf8Length(cp);
      this.map.fill(ci, b, b + n);
      b += n;
      ci++;
      i += cp > 0xffff ? 2 : 1;
    }
  }

  /** Convert one (start, end) pair. */
  convert(start: number, end: number): [number, number] {
    const n = this.map.length;
    if (start < 0 || start >= n) return [start, end];
    const s = this.map[start]!;
    if (end >= 0 && end < n) return [s, this.map[end]!];
    const last = end - 1 >= 0 && end - 1 < n ? this.map[end - 1]! : s + 1;
    return [s, last + 1];
  }
}
