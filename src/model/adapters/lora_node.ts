/**
 * PEFT adapter directories on disk (Node only): `adapter_model.safetensors` + `adapter_config.json`, the files
 * `PeftModel.from_pretrained(model, dir)` reads and `save_pretrained(dir)` writes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SafetensorsFloatDType } from '../../io/safetensors.js';
import type { ModelWeights } from '../weights.js';
import { LoraAdapter } from './lora.js';

/** File names of a PEFT adapter directory. */
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_CONFIG_FILE = 'adapter_config.json';

/** Writes `adapter` to `dir` (created if needed) in the PEFT layout; returns the two paths. */
export function saveLoraAdapter(dir: string, adapter: LoraAdapter, opts: { dtype?: SafetensorsFloatDType; baseModel?: string } = {}): { weights: string; config: string } {
  mkdirSync(dir, { recursive: true });
  const { safetensors, config } = adapter.toPeft(opts);
  const weights = join(dir, PEFT_WEIGHTS_FILE);
  const configPath = join(dir, PEFT_CONFIG_FILE);
  writeFileSync(weights, safetensors);
  writeFileSync(configPath, config);
  return { weights, config: configPath };
}

/** Reads the PEFT adapter in `dir` over `base` (see {@link LoraAdapter.fromPeft}). */
export function loadLoraAdapter(dir: string, base: ModelWeights): LoraAdapter {
  const weights = join(dir, PEFT_WEIGHTS_FILE);
  const config = join(dir, PEFT_CONFIG_FILE);
  return LoraAdapter.fromPeft(base, new Uint8Array(readFileSync(weights)), readFileSync(config, 'utf8'), { weights, config });
}
