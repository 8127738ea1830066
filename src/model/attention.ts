/**
 * Multi-head Latent Attention (SPEC §3.6): the public face of src/model/attention/ (mla.ts orchestrates the two
 * paths, naive.ts and absorbed.ts compute them; see mla.ts for the notation and the trace names).
 */
export { mlaBackward, mlaForward, type AttnImpl, type MLAOptions, type MLASaved } from './attention/mla.js';
export { mlaWeightsFrom, zerosLikeMLAWeights, type MLAWeights } from './attention/weights.js';
