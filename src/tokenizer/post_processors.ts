/**
 * tokenizer.json post-processors (Rust `tokenizers::processors`) for single sequences: they add
 * special tokens around the encoded ids when `addSpecialTokens` is true, and (ByteLevel,
 * RobertaProcessing with `trim_offsets`) trim the whitespace off token offsets.
 */
import { FormatError, UnsupportedError } from '../errors.js';
import { preview, previewText } from '../preview.js';
import { sequenceField } from './json_fields.js';

/** Ids with their token strings and character offsets (one entry per token). */
export interface TokenizerOffsetEncoding {
  ids: number[];
  tokens: string[];
  /** [start, end) per token, in the unit Rust reports (chars = code points of the input). */
  offsets: Array<[number, number]>;
}

/** A post-processor: wraps the ids of one sequence. */
export interface TokenizerPostProcessor {
  /** Ids to put around `ids` (returns a new array or `ids` itself). */
  process(ids: number[], addSpecialTokens: boolean): number[];
  /** The same on an encoding with tokens and offsets (added special tokens get offsets (0, 0), as Rust). */
  processEncoding(enc: TokenizerOffsetEncoding, addSpecialTokens: boolean): TokenizerOffsetEncoding;
}

/** A special token of a template: its ids and token strings. */
export interface TemplateSpecial {
  ids: number[];
  tokens: string[];
}

/** Piece of a TemplateProcessing template: a special token, or the sequence itself. */
type TemplatePiece = TemplateSpecial | 'sequence';

/** A template post-processor from explicit parts, e.g. `[{ids: [bosId], tokens: [bos]}, 'sequence']`. */
export function templatePostProcessor(parts: TemplatePiece[]): TokenizerPostProcessor {
  return {
    process: (ids, add) => {
      if (!add) return ids;
      const out: number[] = [];
      for (const p of parts) {
        if (p === 'sequence') for (const id of ids) out.push(id);
        else for (const id of p.ids) out.push(id);
      }
      return out;
    },
    processEncoding: (enc, add) => {
      if (!add) return enc;
      const out: TokenizerOffsetEncoding = { ids: [], tokens: [], offsets: [] };
      for (const p of parts) {
        if (p === 'sequence') {
          out.ids.push(...enc.ids);
          out.tokens.push(...enc.tokens);
          out.offsets.push(...enc.offsets);
        } else {
          p.ids.forEach((id, k) => {
            out.ids.push(id);
            out.tokens.push(p.tokens[k] ?? '');
            out.offsets.push([0, 0]);
          });
        }
      }
      return out;
    },
  };
}

const WHITE_SPACE = /^\p{White_Space}$/u;
/** 'Ġ', the byte-level char of the space. */
const BYTE_LEVEL_SPACE = 'Ġ';

/**
 * Rust `process_offsets` (ByteLevel `trim_offsets`): move each token's offsets past its leading
 * and trailing spaces (`Ġ` or White_Space chars of the TOKEN string, counted in chars), except
 * one leading space of the first token when `add_prefix_space` (that space was added).
 */
function trimByteLevelOffsets(enc: TokenizerOffsetEncoding, addPrefixSpace: boolean): TokenizerOffsetEncoding {
  const isSpace = (ch: string) => ch === BYTE_LEVEL_SPACE || WHITE_SPACE.test(ch);
  const offsets = enc.offsets.map(([s0, e0], i): [number, number] => {
    const chars = Array.from(enc.tokens[i]!);
    let leading = 0;
    while (leading < chars.length && isSpace(chars[leading]!)) leading++;
    let trailing = 0;
    while (trailing < chars.length && isSpace(chars[chars.length - 1 - trailing]!)) trailing++;
    let s = s0;
    let e = e0;
    if (leading > 0) {
      if ((i === 0 || s === 0) && addPrefixSpace && leading === 1) leading = 0;
      s = Math.min(s + leading, e);
    }
    if (trailing > 0 && e >= trailing) e = Math.max(e - trailing, s);
    return [s, e];
  });
  return { ids: enc.ids, tokens: enc.tokens, offsets };
}

const identity: TokenizerPostProcessor = { process: (ids) => ids, processEncoding: (enc) => enc };

/** Build a post-processor from its tokenizer.json object; null for `"post_processor": null`. */
export function postProcessorFromJSON(json: unknown): TokenizerPostProcessor | null {
  if (json === null || json === undefined) return null;
  const o = json as Record<string, unknown>;
  const type = previewText(o['type']);
  switch (type) {
    case 'ByteLevel': {
      // Ids are unchanged; offsets are trimmed when trim_offsets (Rust's default is true).
      if (o['trim_offsets'] === false) return identity;
      const aps = o['add_prefix_space'] !== false;
      return { process: (ids) => ids, processEncoding: (enc) => trimByteLevelOffsets(enc, aps) };
    }
    case 'TemplateProcessing': {
      const specials = (o['special_tokens'] ?? {}) as Record<string, { ids: number[]; tokens?: string[] }>;
      const single = (o['single'] as Array<Record<string, { id: string }>>) ?? [];
      return templatePostProcessor(
        single.map((p, k): TemplatePiece => {
          if (p['Sequence'] !== undefined) {
            if (p['Sequence'].id !== 'A') throw new UnsupportedError(`TemplateProcessing single[${k}]: sequence '${p['Sequence'].id}' (only 'A' for single inputs)`);
            return 'sequence';
          }
          const name = p['SpecialToken']?.id;
          const sp = name === undefined ? undefined : specials[name];
          if (sp === undefined) throw new FormatError('tokenizer.json', `post_processor TemplateProcessing single[${k}]: unknown special token ${preview(name)}`);
          return { ids: sp.ids, tokens: sp.tokens ?? [] };
        }),
      );
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const cls = o['cls'] as [string, number];
      const sep = o['sep'] as [string, number];
      const template = templatePostProcessor([{ ids: [cls[1]], tokens: [cls[0]] }, 'sequence', { ids: [sep[1]], tokens: [sep[0]] }]);
      if (type === 'BertProcessing' || o['trim_offsets'] === false) return template;
      const aps = o['add_prefix_space'] !== false;
      return { process: template.process, processEncoding: (enc, add) => template.processEncoding(trimByteLevelOffsets(enc, aps), add) };
    }
    case 'Sequence': {
      const list = sequenceField(o, 'processors', 'post_processor Sequence', postProcessorFromJSON);
      return {
        process: (ids, add) => list.reduce((acc, p) => p.process(acc, add), ids),
        processEncoding: (enc, add) => list.reduce((acc, p) => p.processEncoding(acc, add), enc),
      };
    }
    default:
      throw new UnsupportedError(`tokenizer.json post_processor '${type}' is not supported`);
  }
}
