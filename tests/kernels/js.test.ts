import { jsKernels } from '../../src/kernels/js.js';
import { describeKernelSuite } from './suite.js';

// The js kernels in f32 against themselves in f64: the f32 vs f64 agreement of the definition.
describeKernelSuite(async () => jsKernels, 'js');
