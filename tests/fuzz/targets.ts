/**
 * Fuzz targets: the loaders that read files a user hands to the library, each fed malformed
 * variants of a valid input. The property of every target: the loader returns, or throws one of
 * the library's typed errors (a DeepSeekError subclass). Any other exception (TypeError,
 * RangeError, a raw Node fs error, ...) is a crash and fails the run; a hang fails it by the test
 * timeout. Accepted inputs are also checked for what the loader promises (tensors within the
 * buffer and of the declared size; configs that validate; ids that are non-negative integers;
 * tokenizers that encode and decode).
 *
 * `runTarget(name, numRuns, seed)` is shared by the 500-case sample in tests/fuzz/fuzz.test.ts and
 * the long run of `npm run fuzz` (scripts/fuzz.mjs).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { readIdsFile } from '../../src/cli/inputs.js';
import { DeepSeekError } from '../../src/errors.js';
import { readShardedSafetensors } from '../../src/io/safetensors_node.js';
import {
  parseSafetensors,
  SAFETENSORS_DTYPE_SIZE,
  serializeSafetensors,
  tensorToFloat64,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensor,
} from '../../src/io/safetensors.js';
import { configToHF, countParameters, validateConfig } from '../../src/model/config.js';
import { tiny } from '../../src/model/presets.js';
import { readConfigFile } from '../../src/model/weights_node.js';
import { trainBpe } from '../../src/tokenizer/trainer.js';
import { tokenizerFromFile } from '../../src/tokenizer/tokenizer_node.js';
import { applyMutations, applyTextMutation, jsonMutation, malformedJson, serializeMutated, textMutation, type Json } from './mutate.js';

export type TargetName = 'safetensors' | 'shard-index' | 'config' | 'ids' | 'tokenizer';
export const TARGETS: readonly TargetName[] = ['safetensors', 'shard-index', 'config', 'ids', 'tokenizer'];

/** What a run saw: cases, inputs accepted, rejections per error class, and the slowest case. */
export interface FuzzStats {
  target: TargetName;
  runs: number;
  accepted: number;
  rejected: Record<string, number>;
  slowestMs: number;
}

/** A thrown value that is not one of the library's typed errors, re-thrown so fast-check reports and shrinks it. */
class UntypedError extends Error {}

/** Input bytes that fast-check prints as a short preview (a counterexample can be megabytes of JSON). */
class Input {
  constructor(readonly bytes: Uint8Array) {}
  [fc.toStringMethod](): string {
    const text = new TextDecoder().decode(this.bytes.subarray(0, 400)).replace(/\[{200,}/g, (m) => `[×${m.length}`);
    return `<${this.bytes.length} bytes: ${JSON.stringify(text.slice(0, 300))}${this.bytes.length > 400 ? '…' : ''}>`;
  }
}
const asInput = (a: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Input> => a.map((b) => new Input(b));

/** Runs `load`, counting the outcome; only DeepSeekError subclasses may escape it. */
function guarded(stats: FuzzStats, load: () => void): void {
  const t0 = performance.now();
  try {
    load();
    stats.accepted++;
  } catch (e) {
    if (e instanceof DeepSeekError) {
      stats.rejected[e.name] = (stats.rejected[e.name] ?? 0) + 1;
    } else {
      const what = e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 300)}` : `non-Error thrown: ${String(e)}`;
      const where = e instanceof Error ? (e.stack ?? '').split('\n').filter((l) => l.includes('/src/')).slice(0, 3).map((l) => l.trim()) : [];
      throw new UntypedError(`untyped ${what}${where.length > 0 ? ` (${where.join(' ← ')})` : ''}`);
    }
  } finally {
    stats.slowestMs = Math.max(stats.slowestMs, performance.now() - t0);
  }
}

// --- safetensors ------------------------------------------------------------------------------

const DTYPES = Object.keys(SAFETENSORS_DTYPE_SIZE) as SafetensorsDType[];

/** A valid file: 1–4 tensors of any supported dtype, rank 0–3, dims 0–3, random bytes. */
const validTensors: fc.Arbitrary<Map<string, SafetensorsTensor>> = fc
  .uniqueArray(
    fc.record({
      name: fc.oneof(fc.constantFrom('a', 'b', 'model.norm.weight', 'lm_head.weight', '0', '10', 'x.weight_scale_inv'), fc.string({ minLength: 1, maxLength: 4 })),
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
      seed: fc.nat(),
    }),
    { minLength: 1, maxLength: 4, selector: (t) => t.name },
  )
  .map((ts) => {
    const out = new Map<string, SafetensorsTensor>();
    for (const t of ts) {
      const bytes = new Uint8Array(t.shape.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPE_SIZE[t.dtype]);
      let s = t.seed;
      for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
      out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes });
    }
    return out;
  });

/** `arb` in one case of three, `none` otherwise: each kind of damage is applied alone often enough to be seen. */
function sometimes<T>(arb: fc.Arbitrary<T>, none: T): fc.Arbitrary<T> {
  return fc.oneof({ weight: 2, arbitrary: fc.constant(none) }, { weight: 1, arbitrary: arb });
}

/** How the 8-byte header length is written: as it should be, or off by a little or a lot. */
const headerLength = fc.oneof(
  { weight: 6, arbitrary: fc.constant<{ kind: 'exact' } | { kind: 'delta'; d: number } | { kind: 'raw'; v: bigint }>({ kind: 'exact' }) },
  { weight: 2, arbitrary: fc.integer({ min: -9, max: 9 }).map((d) => ({ kind: 'delta' as const, d })) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ kind: 'raw' as const, v })) },
);

/** A safetensors file built from a valid one: header JSON mutations, header-length errors, data-size errors, byte flips. */
const malformedSafetensors: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    validTensors,
    sometimes(fc.array(jsonMutation, { minLength: 1, maxLength: 3 }), []),
    sometimes(fc.array(fc.record({ tensor: fc.nat(), index: fc.integer({ min: 0, max: 1 }), delta: fc.integer({ min: -9, max: 9 }) }), { minLength: 1, maxLength: 2 }), []),
    headerLength,
    sometimes(fc.integer({ min: -4, max: 4 }), 0),
    sometimes(fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 2 }), []),
    textMutation,
  )
  .map(([tensors, mutations, offsetShifts, lengthKind, dataDelta, flips, tm]) => {
    const valid = serializeSafetensors(tensors);
    const n = Number(new DataView(valid.buffer, valid.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(valid.subarray(8, 8 + n))) as Record<string, { data_offsets: number[] }>;
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    for (const s of offsetShifts) header[names[s.tensor % names.length]!]!.data_offsets[s.index]! += s.delta; // shift one offset by a few bytes
    const headerBytes = applyTextMutation(new TextEncoder().encode(serializeMutated(applyMutations(header as Json, mutations))), tm);
    let data = valid.subarray(8 + n);
    if (dataDelta < 0) data = data.subarray(0, Math.max(0, data.length + dataDelta));
    else if (dataDelta > 0) data = Uint8Array.from([...data, ...new Array<number>(dataDelta).fill(0)]);
    const out = new Uint8Array(8 + headerBytes.length + data.length);
    const len = lengthKind.kind === 'exact' ? BigInt(headerBytes.length) : lengthKind.kind === 'delta' ? BigInt(Math.max(0, headerBytes.length + lengthKind.d)) : lengthKind.v;
    new DataView(out.buffer).setBigUint64(0, len, true);
    out.set(headerBytes, 8);
    out.set(data, 8 + headerBytes.length);
    for (const f of flips) if (out.length > 0) out[f.at % out.length]! ^= f.xor;
    return out;
  });

/** A parsed file keeps its promises: each tensor has numel·size bytes and decodes. */
function checkParsed(file: SafetensorsFile): void {
  for (const [name, t] of file.tensors) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (t.bytes.length !== numel * SAFETENSORS_DTYPE_SIZE[t.dtype]) throw new UntypedError(`accepted tensor '${name}' has ${t.bytes.length} bytes for shape ${JSON.stringify(t.shape)} ${t.dtype}`);
    if (tensorToFloat64(t, name).length !== numel) throw new UntypedError(`tensor '${name}' decodes to the wrong length`);
  }
}

// --- shard index ------------------------------------------------------------------------------

/** A file name a malformed index may point at: the real shards, missing files, directories, paths that leave the directory. */
const shardFileName = fc.constantFrom('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'missing.safetensors', '', '.', '..', '../x', 'sub', 'sub/', '/etc/hostname', 'config.json', 'a\u0000b');

// --- config, ids, tokenizer -------------------------------------------------------------------

const CONFIG_BASE = configToHF(tiny) as Json;

const IDS_BASES: Json[] = [[[1, 2, 3], [4, 5, 6]], [7, 8, 9, 10], { input_ids: [[0, 1], [2, 3]] }, { ids: [5] }];

let tokenizerBase: Json | undefined;
/** A small byte-level BPE tokenizer.json (a few merges, a normalizer, two special tokens). */
function tokenizerJson(): Json {
  tokenizerBase ??= trainBpe(['hello world, hello there', 'the cat sat on the mat 12345', 'tokenizers 深度求索 ok'], {
    vocabSize: 258 + 24,
    specialTokens: ['<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>'],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { String: '\t' }, content: ' ' }] },
  }) as Json;
  return tokenizerBase;
}

// --- runner -----------------------------------------------------------------------------------

/** A temporary directory for the file-based loaders (removed by {@link runTarget}). */
function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'dsv3-fuzz-'));
}

/** One target: its generator and the load (+ checks) of one generated case. */
interface Target<T> {
  arbitrary: fc.Arbitrary<T>;
  load: (input: T) => void;
}

/** Builds a target whose files live in `dir`. */
function makeTarget(target: TargetName, dir: string): Target<never> {
  const make = <T>(t: Target<T>): Target<never> => t as unknown as Target<never>;
  switch (target) {
    case 'safetensors':
      return make({ arbitrary: asInput(malformedSafetensors), load: ({ bytes }: Input) => checkParsed(parseSafetensors(bytes, 'fuzz.safetensors')) });
    case 'shard-index': {
      // two valid shards and a subdirectory; the index (and sometimes a shard's bytes) is malformed
      const a = serializeSafetensors({ 'model.norm.weight': { dtype: 'F32', shape: [2], bytes: new Uint8Array(8) } });
      const b = serializeSafetensors({ 'lm_head.weight': { dtype: 'BF16', shape: [2, 2], bytes: new Uint8Array(8) } });
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'config.json'), '{}');
      const base: Json = { metadata: { total_size: 16 }, weight_map: { 'model.norm.weight': 'model-00001-of-00002.safetensors', 'lm_head.weight': 'model-00002-of-00002.safetensors' } };
      return make({
        arbitrary: fc.tuple(
          asInput(malformedJson(base)),
          fc.oneof({ weight: 2, arbitrary: fc.constant<[string, string][]>([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom('model.norm.weight', 'lm_head.weight', 'other'), shardFileName), { minLength: 1, maxLength: 2 }) }),
          fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: asInput(malformedSafetensors) }),
        ),
        load: ([{ bytes: indexBytes }, remap, badShard]: [Input, [string, string][], Input | null]) => {
          let index = indexBytes;
          if (remap.length > 0) {
            // point index entries at other files (valid JSON, wrong targets)
            try {
              const j = JSON.parse(new TextDecoder().decode(indexBytes)) as { weight_map?: Record<string, string> };
              if (j !== null && typeof j.weight_map === 'object' && j.weight_map !== null) for (const [k, f] of remap) j.weight_map[k] = f;
              index = new TextEncoder().encode(JSON.stringify(j));
            } catch {
              // the text mutation broke the JSON: keep it as is
            }
          }
          writeFileSync(join(dir, 'model.safetensors.index.json'), index);
          writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), badShard?.bytes ?? a);
          writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), b);
          checkParsed(readShardedSafetensors(dir));
        },
      });
    }
    case 'config': {
      const path = join(dir, 'config.json');
      return make({
        arbitrary: asInput(malformedJson(CONFIG_BASE)),
        load: ({ bytes }: Input) => {
          writeFileSync(path, bytes);
          const { config } = readConfigFile(path);
          validateConfig(config); // an accepted config satisfies every rule...
          countParameters(config); // ...and its arithmetic runs
        },
      });
    }
    case 'ids': {
      const path = join(dir, 'ids.json');
      return make({
        arbitrary: asInput(fc.constantFrom(...IDS_BASES).chain(malformedJson)),
        load: ({ bytes }: Input) => {
          writeFileSync(path, bytes);
          const rows = readIdsFile(path);
          const ok = rows.length > 0 && rows.every((r) => r.length === rows[0]!.length && r.every((v) => Number.isInteger(v) && v >= 0));
          if (!ok) throw new UntypedError(`accepted ids that are not equal-length rows of non-negative integers: ${JSON.stringify(rows).slice(0, 200)}`);
        },
      });
    }
    case 'tokenizer': {
      const path = join(dir, 'tokenizer.json');
      return make({
        arbitrary: fc.tuple(asInput(malformedJson(tokenizerJson())), fc.constantFrom('hello world', '深度求索 12345\t!', '', '<｜begin▁of▁sentence｜>hi')),
        load: ([{ bytes }, text]: [Input, string]) => {
          writeFileSync(path, bytes);
          const tok = tokenizerFromFile(path, { config: false });
          tok.decode(tok.encode(text)); // a loaded tokenizer must also run
        },
      });
    }
  }
}

/** Runs `numRuns` fast-check cases of one target with a fixed seed; throws (shrunk) on the first crash. */
export function runTarget(target: TargetName, numRuns: number, seed: number): FuzzStats {
  const stats: FuzzStats = { target, runs: 0, accepted: 0, rejected: {}, slowestMs: 0 };
  const dir = scratch();
  try {
    const t = makeTarget(target, dir);
    fc.assert(
      fc.property(t.arbitrary, (input) => {
        stats.runs++;
        guarded(stats, () => t.load(input));
      }),
      { numRuns, seed },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return stats;
}

/**
 * Runs `numRuns` generated cases without stopping at a crash and returns each distinct crash
 * (message without the input-specific parts) with its count: for finding every bug in one pass.
 */
export function surveyTarget(target: TargetName, numRuns: number, seed: number): Map<string, number> {
  const found = new Map<string, number>();
  const stats: FuzzStats = { target, runs: 0, accepted: 0, rejected: {}, slowestMs: 0 };
  const dir = scratch();
  try {
    const t = makeTarget(target, dir);
    for (const input of fc.sample(t.arbitrary, { numRuns, seed })) {
      try {
        guarded(stats, () => t.load(input));
      } catch (e) {
        const key = (e as Error).message.replace(/\d+/g, 'N').slice(0, 400);
        found.set(key, (found.get(key) ?? 0) + 1);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return found;
}

/** One line per run: `target: N cases, A accepted, rejected by ErrorClass n, ...; slowest case t ms`. */
export function formatStats(s: FuzzStats): string {
  const rej = Object.entries(s.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${s.target}: ${s.runs} cases, ${s.accepted} accepted, rejected by ${rej || 'nothing'}; 0 crashes; slowest case ${s.slowestMs.toFixed(1)} ms`;
}
