// Public API of src/verify: trace recording, tensor-by-tensor comparison and reports.
export {
  compareTensor,
  compareTraces,
  parseToleranceRule,
  toleranceFor,
  DEFAULT_TOLERANCE,
  DEFAULT_COS_DIFF_TOL,
} from './compare.js';
export type {
  ComparableData,
  ComparableTensor,
  TensorCollection,
  Tolerance,
  ToleranceRule,
  CompareOptions,
  ComparisonStatus,
  TensorComparison,
  ComparisonResult,
  TensorCompareOptions,
} from './compare.js';
export { officialToHfName, hfToOfficialName, ropeDeinterleave, OFFICIAL_TO_HF_COMPONENTS, ROPE_LAYOUT_GLOBS } from './names.js';
export { comparisonToJSON, comparisonToMarkdown, comparisonToHTML, comparisonToText, renderComparison, reportFormatFromPath } from './report.js';
export type { ReportFormat } from './report.js';
export { TraceRecorder, TRACE_FORMAT, traceOrderFromMetadata, collectionFromSafetensors } from './trace.js';
export type { RecordedTensor, DuplicatePolicy, TraceRecorderOptions } from './trace.js';
