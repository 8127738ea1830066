/**
 * Training checkpoints in safetensors: every weight under its HF name (router biases included),
 * the AdamW moments as `optimizer.exp_avg.<name>` / `optimizer.exp_avg_sq.<name>` in the weights'
 * precision, and the scalars in `__metadata__` as JSON strings. Resuming restores every bit, so
 * training continues exactly as if it had not stopped.
 */
import { FormatError, InputError } from '../errors.js';
import { fromFloatArray, parseSafetensors, serializeSafetensors, toFloatTensor, type SafetensorsTensor } from '../io/safetensors.js';
import type { Tensor } from '../tensor.js';
import type { Trainer, TrainerState } from './trainer.js';

/** `__metadata__.format` of a training checkpoint. */
export const CHECKPOINT_FORMAT = 'deepseek-v3-ref/train-checkpoint@1';

const M_PREFIX = 'optimizer.exp_avg.';
const V_PREFIX = 'optimizer.exp_avg_sq.';

function encode(t: Tensor): SafetensorsTensor {
  return fromFloatArray(t.data, t.shape, t.dtype === 'float32' ? 'F32' : 'F64');
}

/** Serialises the trainer's model weights, optimizer moments and state (step, tokens, data position, PRNG). */
export function saveCheckpoint(trainer: Trainer): Uint8Array {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, t] of trainer.model.weights) tensors.set(name, encode(t));
  const opt = trainer.optimizer.exportState();
  for (const [name, t] of opt.m) tensors.set(M_PREFIX + name, encode(t));
  for (const [name, t] of opt.v) tensors.set(V_PREFIX + name, encode(t));
  const state = trainer.getState();
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: JSON.stringify(state.step),
    tokens: JSON.stringify(state.tokens),
    optimizer_step: JSON.stringify(opt.step),
    data: JSON.stringify(state.data),
  };
  return serializeSafetensors(tensors, metadata);
}

function parseJson(metadata: Record<string, string>, key: string, file: string): unknown {
  const text = metadata[key];
  if (text === undefined) throw new FormatError(file, `checkpoint metadata has no '${key}'`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FormatError(file, `checkpoint metadata '${key}' is not JSON: ${text.slice(0, 80)}`);
  }
}

/**
 * Restores a checkpoint into a trainer built with the same model architecture, precision and
 * options: weights (copied in place), AdamW moments and step, token count and data position.
 */
export function loadCheckpoint(trainer: Trainer, bytes: Uint8Array, fileName = '<checkpoint>'): void {
  const { tensors, metadata } = parseSafetensors(bytes, fileName);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new FormatError(fileName, `not a training checkpoint: metadata.format is ${JSON.stringify(metadata.format)}, expected '${CHECKPOINT_FORMAT}'`);
  }
  const weights = trainer.model.weights;
  const read = (name: string, like: Tensor): Tensor => {
    const st = tensors.get(name);
    if (st === undefined) throw new FormatError(fileName, 'missing from the checkpoint', name);
    const want = like.dtype === 'float32' ? 'F32' : 'F64';
    if (st.dtype !== want || st.shape.join(',') !== like.shape.join(',')) {
      throw new FormatError(fileName, `is ${st.dtype}[${st.shape.join(', ')}], the model needs ${want}[${like.shape.join(', ')}]`, name);
    }
    return toFloatTensor(st, like.dtype, name);
  };
  const expected = new Set(weights.keys());
  for (const name of trainer.optimizer.names) expected.add(M_PREFIX + name).add(V_PREFIX + name);
  for (const name of tensors.keys()) if (!expected.has(name)) throw new FormatError(fileName, 'is not a tensor of this model or optimizer', name);

  const loaded = new Map([...weights].map(([name, t]) => [name, read(name, t)]));
  const m = new Map<string, Tensor>();
  const v = new Map<string, Tensor>();
  for (const name of trainer.optimizer.names) {
    m.set(name, read(M_PREFIX + name, weights.get(name)!));
    v.set(name, read(V_PREFIX + name, weights.get(name)!));
  }
  const step = parseJson(metadata, 'step', fileName);
  const tokens = parseJson(metadata, 'tokens', fileName);
  const optimizerStep = parseJson(metadata, 'optimizer_step', fileName);
  if (typeof step !== 'number' || typeof tokens !== 'number' || typeof optimizerStep !== 'number') {
    throw new FormatError(fileName, `checkpoint metadata step/tokens/optimizer_step must be numbers`);
  }
  const state: TrainerState = { step, tokens, data: parseJson(metadata, 'data', fileName) as TrainerState['data'] };
  if (state.data === null || typeof state.data !== 'object') throw new InputError(`${fileName}: checkpoint metadata 'data' is not a stream position`);

  // all checks passed: now mutate
  trainer.optimizer.importState({ step: optimizerStep, m, v });
  trainer.setState(state);
  for (const [name, t] of loaded) weights.get(name)!.data.set(t.data);
}
