/**
 * Node file adapter for safetensors: single files and sharded checkpoints
 * (`model.safetensors.index.json` = `{"metadata": {...}, "weight_map": {name: shard file}}`).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { FormatError, InputError } from '../errors.js';
import { preview } from '../preview.js';
import type { SafetensorsFile, SafetensorsTensor } from './safetensors.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

/** Reads and validates one safetensors file (errors name the path; a missing or unreadable file is an InputError). */
export function readSafetensorsFile(path: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

/** Writes tensors (and optional `__metadata__`) as one safetensors file. */
export function writeSafetensorsFile(
  path: string,
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileSync(path, serializeSafetensors(tensors, metadata));
}

/** Name of the shard index of a sharded checkpoint. */
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

/**
 * Reads every tensor of a checkpoint directory: the shards listed in `model.safetensors.index.json`
 * when it exists, else `model.safetensors`. Checks that each tensor lives in the shard the index
 * names, that every indexed tensor exists, and that no name appears in two shards.
 */
export function readShardedSafetensors(dir: string): SafetensorsFile {
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (!existsSync(indexPath)) return readSafetensorsFile(join(dir, 'model.safetensors'));
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new FormatError(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown })?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new FormatError(indexPath, `missing or invalid "weight_map" object`);
  }
  const wanted = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string') throw new FormatError(indexPath, `weight_map value is not a file name`, name);
    // a shard lives inside the checkpoint directory: no absolute path, no '..', no NUL
    if (file === '' || isAbsolute(file) || file.split(/[/\\]/).includes('..') || file.includes('\0')) {
      throw new FormatError(indexPath, `weight_map value ${preview(file)} is not a file inside ${dir}`, name);
    }
    wanted.set(name, file);
  }
  const tensors = new Map<string, SafetensorsTensor>();
  let metadata: Record<string, string> = {};
  for (const shard of [...new Set(wanted.values())].sort()) {
    const path = join(dir, shard);
    const file = readSafetensorsFile(path);
    if (Object.keys(metadata).length === 0) metadata = file.metadata;
    for (const [name, t] of file.tensors) {
      if (tensors.has(name)) throw new FormatError(path, `tensor also present in another shard`, name);
      if (wanted.get(name) !== shard) {
        throw new FormatError(path, `tensor not listed for this shard in ${SAFETENSORS_INDEX_FILE} (index says ${wanted.get(name) ?? 'nothing'})`, name);
      }
      tensors.set(name, t);
    }
  }
  for (const [name, shard] of wanted) {
    if (!tensors.has(name)) throw new FormatError(join(dir, shard), `tensor listed in ${SAFETENSORS_INDEX_FILE} is missing from its shard`, name);
  }
  return { tensors, metadata };
}
