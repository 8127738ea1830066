/**
 * tokenizer.json post-processors (Rust `tokenizers::processors`) for single sequences: they add
 * special tokens around the encoded ids when `addSpecialTokens` is true.
 */
import { FormatError, UnsupportedError } from '../errors.js';

/** A post-processor: wraps the ids of one sequence. */
export interface TokenizerPostProcessor {
  /** Ids to put around `ids` (returns a new array or `ids` itself). */
  process(ids: number[], addSpecialTokens: boolean): number[];
}

/** Piece of a TemplateProcessing template: a special token's ids, or the sequence itself. */
type TemplatePiece = { ids: number[] } | 'sequence';

/** A template post-processor from explicit parts, e.g. `[[bosId], 'sequence', [eosId]]`. */
export function templatePostProcessor(parts: Array<number[] | 'sequence'>): TokenizerPostProcessor {
  const pieces: TemplatePiece[] = parts.map((p) => (p === 'sequence' ? p : { ids: p }));
  return {
    process: (ids, add) => {
      if (!add) return ids;
      const out: number[] = [];
      for (const p of pieces) {
        if (p === 'sequence') for (const id of ids) out.push(id);
        else for (const id of p.ids) out.push(id);
      }
      return out;
    },
  };
}

/** Build a post-processor from its tokenizer.json object; null for `"post_processor": null`. */
export function postProcessorFromJSON(json: unknown): TokenizerPostProcessor | null {
  if (json === null || json === undefined) return null;
  const o = json as Record<string, unknown>;
  const type = String(o['type']);
  switch (type) {
    case 'ByteLevel':
      // Only trims offsets; ids are unchanged.
      return { process: (ids) => ids };
    case 'TemplateProcessing': {
      const specials = (o['special_tokens'] ?? {}) as Record<string, { ids: number[] }>;
      const single = (o['single'] as Array<Record<string, { id: string }>>) ?? [];
      return templatePostProcessor(
        single.map((p, k) => {
          if (p['Sequence'] !== undefined) {
            if (p['Sequence'].id !== 'A') throw new UnsupportedError(`TemplateProcessing single[${k}]: sequence '${p['Sequence'].id}' (only 'A' for single inputs)`);
            return 'sequence';
          }
          const name = p['SpecialToken']?.id;
          const sp = name === undefined ? undefined : specials[name];
          if (sp === undefined) throw new FormatError('tokenizer.json', `post_processor TemplateProcessing single[${k}]: unknown special token ${JSON.stringify(name)}`);
          return sp.ids;
        }),
      );
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const cls = o['cls'] as [string, number];
      const sep = o['sep'] as [string, number];
      return templatePostProcessor([[cls[1]], 'sequence', [sep[1]]]);
    }
    case 'Sequence': {
      const list = ((o['processors'] as unknown[]) ?? []).map((p) => postProcessorFromJSON(p)!);
      return { process: (ids, add) => list.reduce((acc, p) => p.process(acc, add), ids) };
    }
    default:
      throw new UnsupportedError(`tokenizer.json post_processor '${type}' is not supported`);
  }
}
