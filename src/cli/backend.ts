/**
 * The kernel backend of the model commands: `--backend js|wasm` (default wasm: the WebAssembly SIMD kernels for f32;
 * f64 always runs the plain-TypeScript kernels) and `--threads N` (the wasm kernels' threads; default the library's,
 * min(available cores, 4) in Node; results are bit-identical for any count).
 */
import type { Command } from 'commander';
import { useBackend, type BackendInfo, type BackendName } from '../kernels/index.js';
import type { DType } from '../tensor.js';
import { CliUsageError } from './errors.js';
import { parsePositiveInt } from './inputs.js';

/** The parsed `--backend` / `--threads` flags. */
export interface BackendFlags {
  backend: BackendName;
  /** Undefined: the library default. */
  threads?: number;
}

/** Parses `--backend`. */
export function parseBackend(v: string): BackendName {
  if (v === 'js' || v === 'wasm') return v;
  throw new CliUsageError(`--backend must be js or wasm, got '${v}'`);
}

/** Adds `--backend` and `--threads` to a model command. */
export function addBackendOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'f32 kernels: js | wasm (SIMD; f64 always runs js)', parseBackend, 'wasm' as BackendName)
    .option('--threads <n>', 'threads of the wasm kernels (default: min(cores, 4) in Node; results are bit-identical for any count)', parsePositiveInt('--threads'));
}

/** Selects the backend the flags ask for (call before the model is loaded, so its f32 weights can be resident). */
export async function selectBackend(flags: BackendFlags): Promise<BackendInfo> {
  if (flags.backend === 'js' && flags.threads !== undefined && flags.threads !== 1) throw new CliUsageError(`--threads ${flags.threads} needs --backend wasm (the js kernels run on one thread)`);
  return useBackend(flags.backend, flags.backend === 'wasm' && flags.threads !== undefined ? { threads: flags.threads } : {});
}

/** What runs a model of `dtype`, for the commands' output: e.g. "kernels wasm-relaxed-simd, 2 threads". */
export function kernelsLabel(info: BackendInfo, dtype: DType): string {
  if (dtype === 'float64') return `kernels ${info.float64} (f64)`;
  return `kernels ${info.float32}${info.float32 === 'js' ? '' : `, ${info.threads} thread${info.threads === 1 ? '' : 's'}`}`;
}
