// Public API of src/train.
export * from './accumulate.js';
export * from './adamw.js';
export * from './bias_update.js';
export * from './checkpoint.js';
export * from './clip.js';
export * from './data.js';
export * from './schedule.js';
export * from './trainer.js';
