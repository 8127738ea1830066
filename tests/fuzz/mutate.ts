/**
 * fast-check arbitraries that turn a valid JSON document into malformed variants: structural
 * mutations at random paths (replace a value by a value of another type, delete a key, wrap a value
 * in an array, nest it 50,000 arrays deep), then optionally text mutations of the serialised form
 * (truncate, splice in bytes, invalid UTF-8). The fuzz targets feed the results to the loaders.
 */
import fc from 'fast-check';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values chosen to break type and range assumptions: wrong types, 0, negatives, fractions, huge, special strings. */
export const weirdValue: fc.Arbitrary<Json> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Json>(
      null, true, false, 0, -0, 1, -1, 2, 3, 7, 8, 0.5, -0.5, 1e-7, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, -(2 ** 53),
      '', 'x', '0', '1', '-1', 'null', 'BPE', 'yarn', 'F32', 'BF16', 'I64', 'sigmoid', 'softmax', '__proto__', 'constructor', '\u0000', '\ud800',
      [], [null], [0], [-1], [1, 2], [0, 0], [2 ** 53, 2 ** 53], {}, { type: null }, { type: 'yarn' }, { __proto__: null } as Json,
    ),
  },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 300 }) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json> },
);

/** Every path (list of keys/indices) in a JSON tree, the root included, in a stable order. */
function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...prefix, k], out);
  return out;
}

/** One structural mutation: what to do at the `pick`-th path (modulo the path count). */
export interface JsonMutation {
  pick: number;
  op: 'replace' | 'delete' | 'wrap' | 'addKey' | 'deep';
  value: Json;
  key: string;
}

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom<JsonMutation['op']>('replace', 'replace', 'replace', 'delete', 'wrap', 'addKey', 'deep'),
  value: weirdValue,
  key: fc.oneof(fc.constantFrom('type', 'dtype', 'shape', 'data_offsets', '__metadata__', 'weight_map', 'input_ids', 'ids', 'model', 'vocab', 'merges', '__proto__'), fc.string({ maxLength: 6 })),
});

/**
 * Stands for a value nested 50,000 arrays deep. JSON.parse accepts any depth but JSON.stringify
 * overflows the stack, so the marker is replaced in the serialised text (see {@link malformedJson}):
 * this finds loaders that walk or print a parsed value recursively.
 */
const DEEP_MARKER = '@@deeply-nested@@';
const DEEP_TEXT = '['.repeat(50_000) + '0' + ']'.repeat(50_000);

/** Applies the mutations in order to a deep copy of `base` (a root-level delete yields null). */
export function applyMutations(base: Json, mutations: readonly JsonMutation[]): Json {
  let root = structuredClone(base);
  for (const m of mutations) {
    const all = paths(root);
    const path = all[m.pick % all.length]!;
    const replacement = (old: Json): Json | undefined => {
      switch (m.op) {
        case 'replace':
          return m.value;
        case 'delete':
          return undefined;
        case 'wrap':
          return [old];
        case 'addKey':
          return old !== null && typeof old === 'object' && !Array.isArray(old) ? { ...old, [m.key]: m.value } : [old, m.value];
        case 'deep':
          return DEEP_MARKER;
      }
    };
    if (path.length === 0) {
      root = replacement(root) ?? null;
      continue;
    }
    let parent: Json = root;
    for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k]!;
    const last = path.at(-1)!;
    const next = replacement((parent as Record<string | number, Json>)[last]!);
    if (Array.isArray(parent)) {
      if (next === undefined) parent.splice(last as number, 1);
      else parent[last as number] = next;
    } else if (next === undefined) delete (parent as Record<string, Json>)[last];
    else Object.defineProperty(parent, last, { value: next, enumerable: true, writable: true, configurable: true }); // '__proto__' as an own key, as JSON.parse makes it
  }
  return root;
}

/** One text mutation of a serialised document. */
export type TextMutation =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; remove: number; insert: number[] }
  | { kind: 'prefix'; bytes: number[] };

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<TextMutation>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      at: fc.nat(),
      remove: fc.nat({ max: 4 }),
      // JSON punctuation, digits, quotes, backslashes, and bytes that are invalid UTF-8 (0x80, 0xc3 alone, 0xff)
      insert: fc.array(fc.constantFrom(0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x2c, 0x3a, 0x5c, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x20, 0x00, 0x80, 0xc3, 0xff), { maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('prefix' as const), bytes: fc.array(fc.constantFrom(0xef, 0xbb, 0xbf, 0x20, 0x0a, 0x5b, 0x7b), { maxLength: 3 }) }) },
);

/** Applies a text mutation to bytes (positions taken modulo the length). */
export function applyTextMutation(bytes: Uint8Array, m: TextMutation): Uint8Array {
  switch (m.kind) {
    case 'none':
      return bytes;
    case 'truncate':
      return bytes.subarray(0, m.at % (bytes.length + 1));
    case 'splice': {
      const at = m.at % (bytes.length + 1);
      const out = new Uint8Array(bytes.length - Math.min(m.remove, bytes.length - at) + m.insert.length);
      out.set(bytes.subarray(0, at));
      out.set(m.insert, at);
      out.set(bytes.subarray(Math.min(bytes.length, at + m.remove)), at + m.insert.length);
      return out;
    }
    case 'prefix': {
      const out = new Uint8Array(m.bytes.length + bytes.length);
      out.set(m.bytes);
      out.set(bytes, m.bytes.length);
      return out;
    }
  }
}

/** JSON text of a mutated value, with each deep-nesting marker replaced by its 50,000-deep array. */
export function serializeMutated(v: Json): string {
  return JSON.stringify(v).replaceAll(`"${DEEP_MARKER}"`, DEEP_TEXT);
}

/** A malformed JSON document: 0–3 structural mutations of `base`, serialised, then maybe a text mutation. */
export function malformedJson(base: Json): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.array(jsonMutation, { maxLength: 3 }), textMutation)
    .map(([ms, tm]) => {
      return applyTextMutation(new TextEncoder().encode(serializeMutated(applyMutations(base, ms))), tm);
    });
}

export type { Json };
