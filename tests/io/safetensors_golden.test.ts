import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseSafetensors, serializeSafetensors, tensorToFloat64 } from '../../src/io/safetensors.js';

const CASES = ['v3', 'v2lite', 'yarn', 'bf16', 'fp8'];
const dir = new URL('../fixtures/golden/', import.meta.url).pathname;

describe('safetensors on the golden files', () => {
  for (const c of CASES) {
    for (const f of ['model.safetensors', 'expected.safetensors']) {
      it(`${c}/${f}: parses and re-serialises byte for byte (same order, header and padding as the official writer)`, () => {
        const bytes = new Uint8Array(readFileSync(dir + `${c}/${f}`));
        const file = parseSafetensors(bytes, `${c}/${f}`);
        expect(file.tensors.size).toBeGreaterThan(0);
        const again = serializeSafetensors(file.tensors, file.metadata);
        expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      });
    }
  }

  it('v3 input_ids (I64) decode to integers in [0, vocab)', () => {
    const file = parseSafetensors(new Uint8Array(readFileSync(dir + 'v3/expected.safetensors')));
    const ids = tensorToFloat64(file.tensors.get('input_ids')!);
    expect(file.tensors.get('input_ids')!.shape).toEqual([3, 14]);
    for (const v of ids) expect(Number.isInteger(v) && v >= 0 && v < 288).toBe(true);
  });
});
