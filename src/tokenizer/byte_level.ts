/**
 * GPT-2 byte-level alphabet: every byte 0..255 maps to a printable Unicode character, so that BPE
 * runs over strings of visible characters while covering all of UTF-8.
 * Definition (openai/gpt-2 encoder.py `bytes_to_unicode`): bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF
 * map to themselves; the remaining 68 bytes, in increasing order, map to U+0100, U+0101, ...
 */

/** `BYTE_TO_CHAR[b]` is the one-character string standing for byte `b`. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Inverse of {@link BYTE_TO_CHAR}: char code → byte, or -1 when the char is not in the alphabet. */
export const CHAR_TO_BYTE: Int16Array = buildCharToByte();

/** The pattern the ByteLevel pre-tokenizer uses when `use_regex` is true (Rust tokenizers, GPT-2). */
export const GPT2_SPLIT_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

function buildByteToChar(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return out;
}

function buildCharToByte(): Int16Array {
  const t = new Int16Array(512).fill(-1);
  for (let b = 0; b < 256; b++) t[BYTE_TO_CHAR[b]!.charCodeAt(0)] = b;
  return t;
}

/**
 * Map a well-formed string to its byte-level form: UTF-8 encode, then one alphabet char per byte.
 * Lone surrogates must have been replaced before (the caller applies `toWellFormed`).
 */
export function toByteLevel(s: string): string {
  const n = s.length;
  // Printable ASCII '!'..'~' maps to itself: most pieces need no new string.
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) break;
    i++;
  }
  if (i === n) return s;
  let out = s.slice(0, i);
  for (; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out += BYTE_TO_CHAR[c];
    } else if (c < 0x800) {
      out += BYTE_TO_CHAR[0xc0 | (c >> 6)]! + BYTE_TO_CHAR[0x80 | (c & 63)];
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out +=
        BYTE_TO_CHAR[0xf0 | (c >> 18)]! +
        BYTE_TO_CHAR[0x80 | ((c >> 12) & 63)] +
        BYTE_TO_CHAR[0x80 | ((c >> 6) & 63)] +
        BYTE_TO_CHAR[0x80 | (c & 63)];
    } else {
      out += BYTE_TO_CHAR[0xe0 | (c >> 12)]! + BYTE_TO_CHAR[0x80 | ((c >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (c & 63)];
    }
  }
  return out;
}

/** UTF-8 bytes of a string (no BOM), as `TextEncoder` would give them. */
const encoder = new TextEncoder();
/** Lossy UTF-8 decoding: each maximal invalid subsequence becomes U+FFFD, as Rust's `from_utf8_lossy`. */
const lossyDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Encode a string to UTF-8 bytes. */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decode UTF-8 bytes, replacing invalid sequences with U+FFFD exactly as Rust `String::from_utf8_lossy`. */
export function utf8DecodeLossy(bytes: Uint8Array): string {
  return lossyDecoder.decode(bytes);
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decode UTF-8 bytes, or return null when they are not valid UTF-8 (Rust `String::from_utf8`). */
export function utf8DecodeStrict(bytes: Uint8Array): string | null {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return null;
  }
}
