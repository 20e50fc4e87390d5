import { fromFloat16, toFloat16 } from './bundle/quantize';
import type { RgbImage } from './image/types';

/** Named colour bins of `colourFractions`, in order. */
export const COLOUR_BINS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'black', 'white', 'gray'] as const;

/**
 * Which colour words a caption may use for a photo: a logistic regression per colour word on the
 * encoder's pooled feature and the photo's colour fractions, fitted on the train captions
 * (`offline:colour-check`: does any reference of the photo use the word). Beam search does not say
 * a colour word whose probability is under `threshold` (chosen on dev). Without it the decoder
 * filled in "a man in a red shirt" whenever it saw a person.
 */
export interface ColourCheck {
  version: 1;
  /** Colour words of the vocabulary, one logistic regression each. */
  words: string[];
  /** Rows of the weight matrix: the pooled feature's size, then the colour bins. */
  featureSize: number;
  /** [featureSize + bins, words] weights (standardisation folded in), float16, little-endian, base64. */
  weights: string;
  bias: number[];
  threshold: number;
  fittedOn?: string;
}

/**
 * Fraction of the photo's pixels in each named colour bin (HSV: dark → black, unsaturated → white
 * or gray, else by hue; dark reds and oranges → brown), from at most ≈ `maxSamples` pixels on a
 * regular grid: cheap on any photo size, and the same numbers offline and in the worker.
 */
export function colourFractions(img: RgbImage, maxSamples = 4096): Float32Array {
  const out = new Float32Array(COLOUR_BINS.length);
  const stride = Math.max(1, Math.round(Math.sqrt((img.width * img.height) / maxSamples)));
  let n = 0;
  for (let y = 0; y < img.height; y += stride) {
    for (let x = 0; x < img.width; x += stride) {
      const i = (y * img.width + x) * 3;
      out[colourBin(img.data[i] / 255, img.data[i + 1] / 255, img.data[i + 2] / 255)]++;
      n++;
    }
  }
  for (let k = 0; k < out.length; k++) out[k] /= n;
  return out;
}

function colourBin(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const s = max ? (max - min) / max : 0;
  if (max < 0.2) return 8; // black
  if (s < 0.15) return max > 0.8 ? 9 : 10; // white, gray
  let h: number;
  if (max === r) h = ((60 * (g - b)) / (max - min) + 360) % 360;
  else if (max === g) h = (60 * (b - r)) / (max - min) + 120;
  else h = (60 * (r - g)) / (max - min) + 240;
  if (h < 20 || h >= 340) return max < 0.5 ? 7 : 0; // brown, red
  if (h < 45) return max < 0.6 ? 7 : 1; // brown, orange
  if (h < 70) return 2;
  if (h < 170) return 3;
  if (h < 260) return 4;
  if (h < 290) return 5;
  return 6;
}

/** The regression's input for one photo: the pooled feature, then √(fraction) × 4 per bin (the scale fitting used). */
export function colourCheckInput(pooled: ArrayLike<number>, fractions: ArrayLike<number>): Float32Array {
  const x = new Float32Array(pooled.length + fractions.length);
  x.set(pooled as Float32Array);
  for (let k = 0; k < fractions.length; k++) x[pooled.length + k] = Math.sqrt(fractions[k]) * 4;
  return x;
}

/** Weights [inputs, words] as the manifest stores them: float16, little-endian, base64. */
export function encodeColourCheckWeights(weights: Float32Array): string {
  let bin = '';
  for (const byte of new Uint8Array(toFloat16(weights).buffer)) bin += String.fromCharCode(byte);
  return btoa(bin);
}

/** Decoded weights of a colour check, for `unlikelyColours`. */
export function colourCheckWeights(check: ColourCheck): Float32Array {
  const bytes = Uint8Array.from(atob(check.weights), (c) => c.charCodeAt(0));
  return fromFloat16(new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2));
}

/** The check's words whose probability for this input is under the threshold. */
export function unlikelyColours(check: ColourCheck, weights: Float32Array, input: Float32Array): string[] {
  const C = check.words.length;
  const out: string[] = [];
  for (let c = 0; c < C; c++) {
    let z = check.bias[c];
    for (let i = 0; i < input.length; i++) z += input[i] * weights[i * C + c];
    if (1 / (1 + Math.exp(-z)) < check.threshold) out.push(check.words[c]);
  }
  return out;
}

/** What is wrong with a manifest's `colourCheck`, for a bundle whose pooled feature has `featureSize` values. */
export function colourCheckProblems(v: unknown, featureSize: number): string[] {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const problems: string[] = [];
  if (o.version !== 1) problems.push('colourCheck.version must be 1');
  const words = o.words;
  if (!(Array.isArray(words) && words.length > 0 && words.every((w) => typeof w === 'string'))) problems.push('colourCheck.words must be a non-empty list of words');
  if (o.featureSize !== featureSize) problems.push(`colourCheck.featureSize must be the encoder's featureSize (${featureSize}), got ${String(o.featureSize)}`);
  const C = Array.isArray(words) ? words.length : 0;
  if (!(Array.isArray(o.bias) && o.bias.length === C && o.bias.every((x) => typeof x === 'number' && Number.isFinite(x)))) problems.push(`colourCheck.bias must be ${C} numbers`);
  if (!(typeof o.threshold === 'number' && o.threshold >= 0 && o.threshold <= 1)) problems.push('colourCheck.threshold must be a number from 0 to 1');
  const expected = (featureSize + COLOUR_BINS.length) * C * 2;
  // Byte count from the text itself: the weights are decoded once, when the captioner loads.
  const w = o.weights;
  const bytes = typeof w === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(w) && w.length % 4 === 0 ? (w.length / 4) * 3 - (w.match(/=*$/)![0].length) : -1;
  if (bytes !== expected) problems.push(`colourCheck.weights must be ${expected} bytes of float16 in base64 ([${featureSize} + ${COLOUR_BINS.length}, ${C}]), got ${bytes < 0 ? 'no base64 string' : `${bytes} bytes`}`);
  return problems;
}
