/** Order statistics of the benchmarks' samples: the element at rank ⌊n·q⌋ (clamped) of the sorted samples. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))];
}

/** The upper median for an even count (the samples' own value, never an average). */
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
