/**
 * `dsv3 dump-script`: prints examples/dump_pytorch_activations.py, the PyTorch side of `dsv3 verify` (forward hooks
 * writing our trace names), from the installed package: `dsv3 dump-script > dump.py`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../errors.js';

/** The script's path: src/cli/commands/ and dist/cli/commands/ both sit three levels below the package root. */
export const DUMP_SCRIPT_URL = new URL('../../../examples/dump_pytorch_activations.py', import.meta.url);

/** Registers `dsv3 dump-script`. */
export function registerDumpScriptCommand(program: Command): void {
  program
    .command('dump-script')
    .description('print the PyTorch activation-dump script for dsv3 verify (examples/dump_pytorch_activations.py)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ dsv3 dump-script > dump.py\n  $ python dump.py MODEL_DIR ids.json ref.safetensors && dsv3 verify --model MODEL_DIR --input ids.json --reference ref.safetensors --hf-rope\nSee docs/verify.md.',
    )
    .action(() => {
      let text: string;
      try {
        text = readFileSync(DUMP_SCRIPT_URL, 'utf8');
      } catch {
        throw new InputError(`${DUMP_SCRIPT_URL.pathname}: the dump script is missing from this installation (it ships under examples/)`);
      }
      process.stdout.write(text);
    });
}
