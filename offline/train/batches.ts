import type { Vocabulary } from '../../shared/text/vocabulary';
import { shuffle } from '../random';

/** One training example: an image's row in the feature matrix and one of its captions as ids. */
export interface Example {
  row: number;
  ids: number[];
}

export function encodeExamples(rows: Map<string, number>, captions: Map<string, string[]>, names: string[], vocab: Vocabulary, maxLength: number): Example[] {
  const out: Example[] = [];
  for (const name of names) {
    const row = rows.get(name);
    if (row === undefined) continue;
    for (const c of captions.get(name) ?? []) out.push({ row, ids: vocab.encode(c, maxLength) });
  }
  return out;
}

export interface Batch {
  /** Feature-matrix rows, one per example. */
  rows: Int32Array;
  /** Input tokens [B, T]: `<start> w1 … wn`, zero-padded. */
  inputs: Int32Array;
  /** Targets [B, T]: `w1 … wn <end>`, zero-padded (0 = not scored). */
  targets: Int32Array;
  size: number;
  steps: number;
}

/**
 * Teacher forcing for token sequences (`<start> w1 … wn <end>`): inputs `<start> w1 … wn` and
 * targets `w1 … wn <end>`, [B, T] zero-padded to the longest (0 = not scored).
 */
export function teacherForcing(seqs: number[][]): { inputs: Int32Array; targets: Int32Array; steps: number } {
  const steps = Math.max(...seqs.map((x) => x.length)) - 1;
  const inputs = new Int32Array(seqs.length * steps);
  const targets = new Int32Array(seqs.length * steps);
  seqs.forEach((x, b) => {
    for (let t = 0; t < x.length - 1; t++) {
      inputs[b * steps + t] = x[t];
      targets[b * steps + t] = x[t + 1];
    }
  });
  return { inputs, targets, steps };
}

/**
 * Shuffled batches, each padded only to its own longest caption. Examples are sorted by length
 * within windows of 50 batches first, so little compute goes to padding while order stays random.
 */
export function makeBatches(examples: Example[], batchSize: number, random: () => number): Batch[] {
  const order = shuffle([...examples], random);
  const window = batchSize * 50;
  const sorted: Example[] = [];
  for (let i = 0; i < order.length; i += window) sorted.push(...order.slice(i, i + window).sort((a, b) => a.ids.length - b.ids.length));
  const batches: Batch[] = [];
  for (let i = 0; i < sorted.length; i += batchSize) {
    const chunk = sorted.slice(i, i + batchSize);
    const { inputs, targets, steps } = teacherForcing(chunk.map((e) => e.ids));
    batches.push({ rows: Int32Array.from(chunk, (e) => e.row), inputs, targets, size: chunk.length, steps });
  }
  return shuffle(batches, random);
}
