import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Vocabulary } from '../../shared/text/vocabulary';
import { rng } from '../random';

export interface GloveEmbedding {
  dim: number;
  /** vocabulary.size × dim, row-major; row i is the vector of word id i. */
  matrix: Float32Array;
  /** Vocabulary words (special tokens excluded) found in the file. */
  covered: number;
  /** covered / number of non-special words. */
  coverage: number;
  /** Non-special words not in the file; their rows are random N(0, 0.1²). */
  missing: string[];
}

const FIRST_WORD_ID = 4; // ids 0..3 are <pad> <start> <end> <unk>

/**
 * Reads a GloVe text file (`word v1 … vD` per line), streaming, into an embedding matrix for
 * `vocabulary`. `dim` defaults to the first line's; every line must match it. Rows not covered
 * (special tokens other than <pad>, and missing words) are seeded N(0, 0.1²); <pad> stays zero.
 */
export async function readGlove(path: string, vocabulary: Vocabulary, dim?: number, seed = 42): Promise<GloveEmbedding> {
  const wanted = new Map<string, number>();
  vocabulary.words.forEach((w, id) => {
    if (id >= FIRST_WORD_ID) wanted.set(w, id);
  });
  const found = new Map<number, Float32Array>();
  let d = dim;
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const raw of lines) {
    lineNo++;
    const line = raw.trimEnd();
    if (!line) continue;
    const parts = line.split(' ');
    // word2vec-style header ("400000 100"): skip it.
    if (lineNo === 1 && parts.length === 2 && /^\d+$/.test(parts[0]) && /^\d+$/.test(parts[1])) continue;
    if (d === undefined) d = parts.length - 1;
    if (d < 1 || parts.length !== d + 1) {
      lines.close();
      throw new Error(`${path}:${lineNo}: expected a word and ${d} numbers, got ${parts.length - 1} value(s): '${line.slice(0, 60)}…'`);
    }
    const id = wanted.get(parts[0]);
    if (id === undefined || found.has(id)) continue;
    const v = new Float32Array(d);
    for (let j = 0; j < d; j++) {
      v[j] = Number(parts[j + 1]);
      if (!Number.isFinite(v[j])) {
        lines.close();
        throw new Error(`${path}:${lineNo}: value ${j + 1} of '${parts[0]}' is not a number: '${parts[j + 1]}'`);
      }
    }
    found.set(id, v);
  }
  if (d === undefined) throw new Error(`${path}: no vectors in the file`);

  const random = rng(seed);
  const gauss = () => 0.1 * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const matrix = new Float32Array(vocabulary.size * d);
  const missing: string[] = [];
  for (let id = 0; id < vocabulary.size; id++) {
    const v = found.get(id);
    if (v) matrix.set(v, id * d);
    else if (id !== vocabulary.padId) {
      for (let j = 0; j < d; j++) matrix[id * d + j] = gauss();
      if (id >= FIRST_WORD_ID) missing.push(vocabulary.words[id]);
    }
  }
  const words = Math.max(0, vocabulary.size - FIRST_WORD_ID);
  return { dim: d, matrix, covered: found.size, coverage: words ? found.size / words : 0, missing };
}
