/**
 * A short rendering of a parsed JSON value for an error message: `JSON.stringify` cut to `max`
 * characters. It never throws: JSON.parse accepts any nesting depth, but JSON.stringify recurses,
 * so a value nested tens of thousands of levels deep is named by its type instead of a RangeError.
 */
export function preview(value: unknown, max = 200): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? 'an array nested too deeply to print' : 'a value nested too deeply to print';
  }
  s ??= String(value);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** A string as itself (for messages that quote it), any other value as {@link preview} renders it. */
export function previewText(value: unknown, max = 200): string {
  return typeof value === 'string' ? (value.length > max ? `${value.slice(0, max)}…` : value) : preview(value, max);
}
