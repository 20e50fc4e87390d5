import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Unit shown in the rate, e.g. 'img' → "12.3 img/s". */
  unit?: string;
  stream?: NodeJS.WriteStream;
}

/**
 * A progress bar with rate and ETA on stderr. Without a TTY (or with env CI set) it prints a
 * plain line every ~10 % instead, so logs stay readable.
 */
export function createProgress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const unit = opts.unit ?? 'it';
  const t0 = performance.now();
  let value = 0;
  const rate = () => value / Math.max(1e-9, (performance.now() - t0) / 1000);

  if (stream.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate} ${unit}/s | ETA {eta_formatted}`,
        etaBuffer: 50,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0' });
    return {
      tick(n = 1) {
        value += n;
        bar.update(value, { rate: rate().toFixed(1) });
      },
      stop() {
        bar.stop();
      },
    };
  }

  const step = Math.max(1, Math.ceil(total / 10));
  let nextReport = step;
  return {
    tick(n = 1) {
      value += n;
      if (value < nextReport && value < total) return;
      while (nextReport <= value) nextReport += step;
      const r = rate();
      const eta = r > 0 ? (total - value) / r : NaN;
      const pct = total ? ((100 * value) / total).toFixed(0) : '100';
      stream.write(`${label}: ${value}/${total} (${pct}%) ${r.toFixed(1)} ${unit}/s, ETA ${formatSeconds(eta)}\n`);
    },
    stop() {},
  };
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}
