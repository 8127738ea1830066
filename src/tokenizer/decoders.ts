/**
 * tokenizer.json decoders (Rust `tokenizers::decoders`): each maps the list of token strings to a
 * new list (`decode_chain`); the final text is the concatenation.
 */
import { UnsupportedError } from '../errors.js';
import { previewText } from '../preview.js';
import { CHAR_TO_BYTE, utf8DecodeLossy, utf8DecodeStrict, utf8Encode } from './byte_level.js';
import { numberField, sequenceField, stringField } from './json_fields.js';
import { metaspaceScheme } from './pre_tokenizers.js';
import { compileJsonPattern, replaceAll } from './regex.js';

/** A decoder: token strings → token strings. */
export interface TokenizerDecoder {
  /** The JSON `type` (used to pick fast paths). */
  readonly type: string;
  /** Rust `Decoder::decode_chain`. */
  decodeChain(tokens: string[]): string[];
}

/**
 * Bytes of a byte-level token: each char through the GPT-2 alphabet; a token with any char outside
 * the alphabet (e.g. an added token such as `<｜User｜>`) contributes its own UTF-8 bytes instead.
 */
export function byteLevelTokenBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 512 ? CHAR_TO_BYTE[c]! : -1;
    if (b < 0) return utf8Encode(token);
    out[i] = b;
  }
  return out;
}

/** Concatenate byte arrays. */
function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** Build a decoder from its tokenizer.json object; null for `"decoder": null`. */
export function decoderFromJSON(json: unknown): TokenizerDecoder | null {
  if (json === null || json === undefined) return null;
  const o = json as Record<string, unknown>;
  const type = previewText(o['type']);
  switch (type) {
    case 'ByteLevel':
      return { type, decodeChain: (ts) => [utf8DecodeLossy(concatBytes(ts.map(byteLevelTokenBytes)))] };
    case 'Sequence': {
      const list = sequenceField(o, 'decoders', 'decoder Sequence', decoderFromJSON);
      return { type, decodeChain: (ts) => list.reduce((acc, d) => d.decodeChain(acc), ts) };
    }
    case 'Replace': {
      const re = compileJsonPattern(o['pattern'], 'decoder Replace');
      const content = stringField(o, 'content', 'decoder Replace');
      return {
        type,
        decodeChain: (ts) => ts.map((t) => replaceAll(t, re, content)),
      };
    }
    case 'Fuse':
      return { type, decodeChain: (ts) => [ts.join('')] };
    case 'Strip': {
      const content = stringField(o, 'content', 'decoder Strip').codePointAt(0);
      const start = numberField(o, 'start', 'decoder Strip', 0);
      const stop = numberField(o, 'stop', 'decoder Strip', 0);
      return { type, decodeChain: (ts) => ts.map((t) => stripToken(t, content, start, stop)) };
    }
    case 'ByteFallback':
      return { type, decodeChain: byteFallback };
    case 'Metaspace': {
      const rep = stringField(o, 'replacement', 'decoder Metaspace', '▁');
      const scheme = metaspaceScheme(o);
      return {
        type,
        decodeChain: (ts) => ts.map((t, i) => t.replaceAll(rep, i === 0 && scheme !== 'never' ? '' : ' ')),
      };
    }
    case 'BPEDecoder': {
      const suffix = stringField(o, 'suffix', 'decoder BPEDecoder', '</w>');
      return { type, decodeChain: (ts) => ts.map((t, i) => t.replaceAll(suffix, i === ts.length - 1 ? '' : ' ')) };
    }
    default:
      throw new UnsupportedError(`tokenizer.json decoder '${previewText(type)}' is not supported`);
  }
}

/** Rust `decoders::Strip`: drop up to `start` leading and `stop` trailing `content` chars. */
function stripToken(t: string, content: number | undefined, start: number, stop: number): string {
  const chars = [...t];
  let a = 0;
  while (a < start && a < chars.length && chars[a]!.codePointAt(0) === content) a++;
  let b = chars.length;
  for (let i = 0; i < stop && b > 0 && chars[b - 1]!.codePointAt(0) === content; i++) b--;
  return b <= a ? '' : chars.slice(a, b).join('');
}

/** Rust `decoders::ByteFallback`: runs of `<0xXX>` become their UTF-8 text, or one U+FFFD per byte if invalid. */
function byteFallback(ts: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    const s = utf8DecodeStrict(Uint8Array.from(bytes));
    if (s !== null) out.push(s);
    else for (let k = 0; k < bytes.length; k++) out.push('\uFFFD');
    bytes = [];
  };
  for (const t of ts) {
    const m = BYTE_TOKEN.exec(t);
    if (m !== null) {
      bytes.push(parseInt(m[1]!, 16));
      continue;
    }
    flush();
    out.push(t);
  }
  flush();
  return out;
}
