/**
 * The computation the browser test runs on both sides: a forward of the `tiny` preset (seed-0 f32
 * weights) on the wasm backend, returning the logits as their raw f32 bit patterns so that the two
 * engines can be compared bit for bit. It imports only the browser-safe main entry (src/index.ts).
 */
import { DeepSeekV3, backendInfo, getPreset, initWeights, useBackend, type WasmVariant } from '../../src/index.js';

/** Two rows of 12 ids (tiny's vocab is 256): batch > 1 and T > 1 exercise the batched and causal paths. */
export const IDS: number[][] = [
  [1, 17, 42, 99, 7, 7, 200, 3, 255, 0, 128, 64],
  [5, 4, 3, 2, 1, 0, 250, 251, 252, 9, 8, 77],
];

export interface ForwardBits {
  /** `backendInfo().float32` after `useBackend('wasm', { variant })`: which build ran. */
  backend: string;
  shape: number[];
  /** The logits' f32 bit patterns (Uint32 view of the Float32Array), in row-major order. */
  bits: number[];
}

/** Forward of `tiny` on the wasm kernels of the given variant; the js backend is restored afterwards. */
export async function forwardBits(variant: WasmVariant): Promise<ForwardBits> {
  await useBackend('wasm', { variant });
  try {
    const config = getPreset('tiny');
    const model = new DeepSeekV3(config, initWeights(config, { seed: 0, dtype: 'float32' }));
    const { logits } = model.forward(IDS);
    const data = logits.data as Float32Array;
    return {
      backend: backendInfo().float32,
      shape: [...logits.shape],
      bits: Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length)),
    };
  } finally {
    await useBackend('js');
  }
}
