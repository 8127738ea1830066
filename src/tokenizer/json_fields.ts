/**
 * Typed reads of tokenizer.json component fields. A field of the wrong JSON type is a FormatError
 * naming the component and the key (Rust's serde rejects it too), never a silent `String(x)`
 * coercion: that would turn a missing `prepend` into the text "undefined", and a deeply nested
 * array into a stack overflow.
 */
import { FormatError } from '../errors.js';
import { preview } from '../preview.js';

/** `o[key]` as a string; `dflt` when the key is absent or null (required when no default is given). */
export function stringField(o: Record<string, unknown>, key: string, where: string, dflt?: string): string {
  const v = o[key] ?? dflt;
  if (typeof v !== 'string') throw new FormatError('tokenizer.json', `${where}: '${key}' is ${preview(v)}, expected a string`);
  return v;
}

/** `o[key]` as a finite number; `dflt` when the key is absent or null. */
export function numberField(o: Record<string, unknown>, key: string, where: string, dflt: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError('tokenizer.json', `${where}: '${key}' is ${preview(v)}, expected a number`);
  return v;
}

/** The components of a `Sequence` (`o[key]`, absent = empty): each built by `build`; a non-list or a null entry is a FormatError. */
export function sequenceField<T>(o: Record<string, unknown>, key: string, where: string, build: (json: unknown) => T | null): T[] {
  const list = o[key] ?? [];
  if (!Array.isArray(list)) throw new FormatError('tokenizer.json', `${where}: '${key}' is ${preview(list)}, expected a list`);
  return list.map((json, i) => {
    const part = build(json);
    if (part === null) throw new FormatError('tokenizer.json', `${where}: ${key}[${i}] is null`);
    return part;
  });
}
