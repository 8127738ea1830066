// Public API of src/demo (browser-safe).
export * from './checks.js';
export * from './demo.js';
export * from './entropy.js';
export * from './evaluate.js';
export * from './history.js';
export * from './report.js';
export * from './svg.js';
