/**
 * `dsv3 diff a.safetensors b.safetensors`: compares two dumps tensor by tensor (b is the
 * reference) with the same rules and reports as `verify`. Also holds the comparison flags and
 * output shared with `verify`.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readSafetensorsFile } from '../../io/safetensors_node.js';
import { compareTraces, parseToleranceRule, type ComparisonResult, type TensorCollection } from '../../verify/compare.js';
import { comparisonToJSON, comparisonToText, renderComparison, reportFormatFromPath } from '../../verify/report.js';
import { collectionFromSafetensors } from '../../verify/trace.js';
import { CliUsageError, EXIT } from '../errors.js';
import { collect, parseNonNegative } from '../inputs.js';

/** Flags shared by `diff` and `verify`. */
export interface CompareFlags {
  rtol?: number;
  atol?: number;
  cosTol?: number;
  tol?: string[];
  report?: string;
  officialNames?: boolean;
  hfRope?: boolean;
  orderedRouting?: boolean;
  json?: boolean;
}

/** Adds the comparison flags to a command. */
export function addCompareOptions(cmd: Command): Command {
  return cmd
    .option('--rtol <x>', 'default relative tolerance (element passes if |a-b| <= rtol*|ref|)', parseNonNegative('--rtol'))
    .option('--atol <x>', 'default absolute tolerance (... or |a-b| <= atol)', parseNonNegative('--atol'))
    .option('--cos-tol <x>', 'bound on the cosine difference 1 - 2*sum(ab)/sum(a^2+b^2)', parseNonNegative('--cos-tol'))
    .option('--tol <glob=rtol,atol>', 'per-pattern tolerance, repeatable, first match wins', collect, [])
    .option('--report <file>', 'write a report: .json, .md or .html (chosen by extension)')
    .option('--official-names', 'reference uses official-code names (layers.3.attn.wkv_b), SPEC 2.4')
    .option('--hf-rope', 'reference q_pe/k_pe are in the HF de-interleaved RoPE layout, SPEC 3.4')
    .option('--ordered-routing', 'compare gate:indices/gate:weights in their order (default: per row as expert sets)')
    .option('--json', 'print the full comparison as JSON on stdout');
}

/** The report format of `--report`, checked before any work (a usage error for an unknown extension). */
export function checkReportFlag(flags: CompareFlags): void {
  if (flags.report !== undefined && reportFormatFromPath(flags.report) === null) {
    throw new CliUsageError(`--report ${flags.report}: use a .json, .md or .html file name`);
  }
}

/** Writes the report, prints the summary (or JSON); returns the exit code (0 pass, 1 mismatch). */
export function emitComparison(result: ComparisonResult, flags: CompareFlags, title: string): number {
  const format = flags.report !== undefined ? reportFormatFromPath(flags.report) : null;
  if (flags.report !== undefined && format !== null) writeFileSync(flags.report, renderComparison(result, format, title));
  if (flags.json) process.stdout.write(comparisonToJSON(result) + '\n');
  else process.stdout.write(comparisonToText(result) + (flags.report ? `Report: ${flags.report}\n` : ''));
  return result.allPassed ? EXIT.OK : EXIT.MISMATCH;
}

/** Compares with fixed tolerances, writes the report, prints the summary; returns the exit code (0 pass, 1 mismatch). */
export function runComparison(library: TensorCollection, reference: TensorCollection, flags: CompareFlags, title: string): number {
  checkReportFlag(flags);
  const result: ComparisonResult = compareTraces(library, reference, {
    tolerance: { ...(flags.rtol !== undefined ? { rtol: flags.rtol } : {}), ...(flags.atol !== undefined ? { atol: flags.atol } : {}) },
    rules: (flags.tol ?? []).map(parseToleranceRule),
    ...(flags.cosTol !== undefined ? { cosDiffTol: flags.cosTol } : {}),
    officialNames: flags.officialNames === true,
    hfRope: flags.hfRope === true,
    orderedRouting: flags.orderedRouting === true,
  });
  return emitComparison(result, flags, title);
}

/** Registers `dsv3 diff`. */
export function registerDiffCommand(program: Command): void {
  const cmd = program
    .command('diff')
    .description('compare two safetensors dumps tensor by tensor (the second is the reference); exit 0 all pass, 1 mismatch, 2 input error')
    .argument('<a>', 'dump under test (.safetensors)')
    .argument('<b>', 'reference dump (.safetensors)');
  addCompareOptions(cmd)
    .addHelpText('after', "\nExamples:\n  $ dsv3 diff mine.safetensors ref.safetensors\n  $ dsv3 diff mine.safetensors ref.safetensors --tol '*:attn_probs=1e-2,1e-6' --report diff.html")
    .action((a: string, b: string, flags: CompareFlags) => {
      const lib = collectionFromSafetensors(readSafetensorsFile(a));
      const ref = collectionFromSafetensors(readSafetensorsFile(b));
      process.exitCode = runComparison(lib, ref, flags, `dsv3 diff ${a} ${b}`);
    });
}
