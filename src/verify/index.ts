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
  CalibratedStats,
  NearTie,
} from './compare.js';
export { compareCalibrated, CALIBRATED_K } from './calibrated.js';
export type { CalibratedOptions } from './calibrated.js';
export { libraryTrace } from './library_run.js';
export type { LibraryTraceOptions, LibraryTrace } from './library_run.js';
export { routingMargins, sortRoutingRows } from './routing_sets.js';
export type { RoutingMargin, RouterShape, SortedRouting } from './routing_sets.js';
export { officialToHfName, hfToOfficialName, ropeDeinterleave, OFFICIAL_TO_HF_COMPONENTS, ROPE_LAYOUT_GLOBS } from './names.js';
export { comparisonToJSON, comparisonToMarkdown, comparisonToHTML, comparisonToText, renderComparison, reportFormatFromPath } from './report.js';
export type { ReportFormat } from './report.js';
export { TraceRecorder, TRACE_FORMAT, traceOrderFromMetadata, collectionFromSafetensors } from './trace.js';
export type { RecordedTensor, DuplicatePolicy, TraceRecorderOptions } from './trace.js';
