/** Browser bundle entry: exposes {@link forwardBits} to the page as `window.forwardBits`. */
import { forwardBits } from './forward_page.js';

(globalThis as unknown as { forwardBits: typeof forwardBits }).forwardBits = forwardBits;
