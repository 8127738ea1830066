/**
 * A small progress bar for long CLI work (tokens/s or steps/s and ETA), over cli-progress.
 * Disabled (every method a no-op) when stderr is not a TTY or when the command prints `--json`,
 * so scripts and logs never see control characters.
 */
import cliProgress from 'cli-progress';

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Number of units to do. */
  total: number;
  /** Text before the bar, e.g. `train`. */
  label?: string;
  /** Unit name for the rate, e.g. `tok` (→ `tok/s`). Default `it`. */
  unit?: string;
  /** Force on/off; default: on iff stderr is a TTY. `--json` commands pass false. */
  enabled?: boolean;
}

/** A progress bar (no-op when disabled). */
export interface Progress {
  /** Advances by `n` units; `extra` is shown after the rate (e.g. `loss 2.31`). */
  tick(n?: number, extra?: string): void;
  /** Sets the absolute value. */
  update(value: number, extra?: string): void;
  /** Finishes and releases the terminal line. */
  stop(): void;
  readonly enabled: boolean;
}

/** Creates a progress bar on stderr. */
export function createProgress(opts: ProgressOptions): Progress {
  const enabled = opts.enabled ?? process.stderr.isTTY === true;
  if (!enabled) return { tick() {}, update() {}, stop() {}, enabled: false };
  const unit = opts.unit ?? 'it';
  const bar = new cliProgress.SingleBar(
    {
      format: `${opts.label ? `${opts.label} ` : ''}[{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}{extra}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = performance.now();
  let value = 0;
  const payload = (extra?: string) => {
    const secs = (performance.now() - start) / 1000;
    const rate = secs > 0 ? value / secs : 0;
    return { rate: rate >= 100 ? rate.toFixed(0) : rate.toFixed(2), extra: extra ? ` | ${extra}` : '' };
  };
  bar.start(opts.total, 0, payload());
  return {
    enabled: true,
    tick(n = 1, extra) {
      value += n;
      bar.update(value, payload(extra));
    },
    update(v, extra) {
      value = v;
      bar.update(value, payload(extra));
    },
    stop() {
      bar.stop();
    },
  };
}
