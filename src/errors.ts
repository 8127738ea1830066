/**
 * Typed errors. Every error says what was wrong and where (file, tensor name, config key,
 * token index) so a user can act on the message alone.
 */

/** Base class of every error this library throws on purpose. */
export class DeepSeekError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A shape, dtype or size does not fit the operation. */
export class ShapeError extends DeepSeekError {}

/** A configuration value breaks a rule of SPEC §1.4; `key` names the offending config key. */
export class ConfigError extends DeepSeekError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`config key '${key}': ${message}`);
  }
}

/** A file is malformed; `file` names it and `tensor` the tensor when one is at fault. */
export class FormatError extends DeepSeekError {
  constructor(
    readonly file: string,
    message: string,
    readonly tensor?: string,
  ) {
    super(`${file}${tensor !== undefined ? ` (tensor '${tensor}')` : ''}: ${message}`);
  }
}

/** Weights do not match the model: missing, unexpected or mis-shaped tensors, by name. */
export class WeightsError extends DeepSeekError {}

/** Bad user input at run time: token ids out of range, ragged batches, bad options. */
export class InputError extends DeepSeekError {}

/** A request needs more memory than the budget allows (estimated before anything is allocated). */
export class ResourceError extends DeepSeekError {}

/** A feature or component that this library does not implement (never silently approximated). */
export class UnsupportedError extends DeepSeekError {}

/** The WebAssembly backend could not be used (e.g. the engine lacks SIMD). */
export class BackendError extends DeepSeekError {}
