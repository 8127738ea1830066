/**
 * Node-only loader: read tokenizer.json (and tokenizer_config.json beside it, when present) from
 * disk. The core {@link Tokenizer} is browser-safe and takes parsed JSON.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FormatError } from '../errors.js';
import { Tokenizer } from './tokenizer.js';

/** Options of {@link tokenizerFromFile}. */
export interface TokenizerFileOptions {
  /**
   * tokenizer_config.json to use: a path, `false` for none, or undefined (default) to use the
   * file of that name in the same directory if it exists.
   */
  config?: string | false;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new FormatError(path, `cannot read: ${(e as Error).message}`);
  }
}

/** Load a tokenizer from a tokenizer.json path (Node). */
export function tokenizerFromFile(path: string, options: TokenizerFileOptions = {}): Tokenizer {
  let configPath: string | null = null;
  if (typeof options.config === 'string') configPath = options.config;
  else if (options.config === undefined) {
    const beside = join(dirname(path), 'tokenizer_config.json');
    if (existsSync(beside)) configPath = beside;
  }
  const json = readText(path);
  const config = configPath === null ? undefined : readText(configPath);
  try {
    return Tokenizer.fromJSON(json, config);
  } catch (e) {
    if (e instanceof FormatError && e.file === 'tokenizer.json') throw new FormatError(path, e.message.replace(/^tokenizer\.json: /, ''));
    throw e;
  }
}
