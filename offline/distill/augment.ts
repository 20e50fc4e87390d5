import type { Normalization } from '../../shared/bundle/manifest';
import { normalizeInPlace } from '../../shared/image/normalize';
import { resizeToFloat } from '../../shared/image/resize';
import type { RgbImage } from '../../shared/image/types';

export interface AugmentConfig {
  /** Random resized crop: fraction of the image area kept, [min, max]. */
  cropScale: [number, number];
  /** Aspect ratio range of the crop (width / height). */
  cropRatio: [number, number];
  flip: boolean;
  /** Brightness, contrast and saturation each scaled by a factor in [1 − j, 1 + j]. */
  colourJitter: number;
}

export const DEFAULT_AUGMENT: AugmentConfig = { cropScale: [0.45, 1], cropRatio: [3 / 4, 4 / 3], flip: true, colourJitter: 0.25 };
/** For targets cached per view (original and mirrored photo): no crop, mild colour jitter only. */
export const CACHED_VIEW_AUGMENT: AugmentConfig = { cropScale: [1, 1], cropRatio: [1, 1], flip: true, colourJitter: 0.1 };

/** One augmented view's pixels: a crop (flipped, colour-jittered) of the source, as a new RgbImage. */
export function augmentedView(img: RgbImage, cfg: AugmentConfig, random: () => number): { image: RgbImage; flipped: boolean } {
  const { width: W, height: H } = img;
  let cw = W;
  let ch = H;
  const full = cfg.cropScale[0] >= 1;
  for (let tries = 0; tries < 10 && !full; tries++) {
    const area = W * H * (cfg.cropScale[0] + random() * (cfg.cropScale[1] - cfg.cropScale[0]));
    const logR = Math.log(cfg.cropRatio[0]) + random() * (Math.log(cfg.cropRatio[1]) - Math.log(cfg.cropRatio[0]));
    const r = Math.exp(logR);
    const w = Math.round(Math.sqrt(area * r));
    const h = Math.round(Math.sqrt(area / r));
    if (w >= 8 && h >= 8 && w <= W && h <= H) {
      cw = w;
      ch = h;
      break;
    }
  }
  const x0 = Math.floor(random() * (W - cw + 1));
  const y0 = Math.floor(random() * (H - ch + 1));
  const flip = cfg.flip && random() < 0.5;
  const j = cfg.colourJitter;
  const bright = 1 + j * (2 * random() - 1);
  const contrast = 1 + j * (2 * random() - 1);
  const sat = 1 + j * (2 * random() - 1);
  const out = new Uint8Array(cw * ch * 3);
  // Mean luminance of the crop, the pivot of the contrast change.
  let mean = 0;
  for (let y = 0; y < ch; y++) {
    const src = ((y0 + y) * W + x0) * 3;
    for (let x = 0; x < cw; x++) {
      const s = src + x * 3;
      mean += 0.299 * img.data[s] + 0.587 * img.data[s + 1] + 0.114 * img.data[s + 2];
    }
  }
  mean /= cw * ch;
  for (let y = 0; y < ch; y++) {
    const src = ((y0 + y) * W + x0) * 3;
    for (let x = 0; x < cw; x++) {
      const s = src + x * 3;
      const d = (y * cw + (flip ? cw - 1 - x : x)) * 3;
      const r = img.data[s] * bright;
      const g = img.data[s + 1] * bright;
      const b = img.data[s + 2] * bright;
      const l = 0.299 * r + 0.587 * g + 0.114 * b;
      for (let c = 0; c < 3; c++) {
        const v = c === 0 ? r : c === 1 ? g : b;
        const saturated = l + (v - l) * sat;
        const contrasted = (saturated - mean * bright) * contrast + mean * bright;
        out[d + c] = contrasted < 0 ? 0 : contrasted > 255 ? 255 : Math.round(contrasted);
      }
    }
  }
  return { image: { width: cw, height: ch, data: out }, flipped: flip };
}

/** The view resized and normalised for one model, written into `out` at `offset`. */
export function viewInput(view: RgbImage, size: number, norm: Normalization, out: Float32Array, offset: number): void {
  const px = resizeToFloat(view, size, size);
  normalizeInPlace(px, norm);
  out.set(px, offset);
}

/** The photo mirrored left to right. */
export function mirrored(img: RgbImage): RgbImage {
  const { width: W, height: H } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * 3;
      const d = (y * W + (W - 1 - x)) * 3;
      out[d] = img.data[s];
      out[d + 1] = img.data[s + 1];
      out[d + 2] = img.data[s + 2];
    }
  return { width: W, height: H, data: out };
}
