import type { Normalization } from '../bundle/manifest';
import { resizeToFloat } from './resize';
import type { RgbImage } from './types';

/** Normalisation of the ImageNet MobileNet teacher: RGB scaled to [-1, 1]. */
export const UNIT_RANGE_NORMALIZATION: Normalization = { channelOrder: 'rgb', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };
/** Keras VGG16 ("caffe" mode): BGR, ImageNet means subtracted, no scaling. */
export const CAFFE_NORMALIZATION: Normalization = { channelOrder: 'bgr', mean: [103.939, 116.779, 123.68], std: [1, 1, 1] };

/**
 * The encoder's input for one image: stretched to size × size with area averaging (as the
 * training photos were), channels reordered and normalised. HWC float32, length size² · 3.
 */
export function toEncoderInput(img: RgbImage, size: number, norm: Normalization): Float32Array {
  const px = resizeToFloat(img, size, size);
  normalizeInPlace(px, norm);
  return px;
}

/** Applies a normalisation to HWC RGB values in 0..255, in place. */
export function normalizeInPlace(px: Float32Array, norm: Normalization): void {
  const bgr = norm.channelOrder === 'bgr';
  const [m0, m1, m2] = norm.mean;
  const [s0, s1, s2] = norm.std;
  for (let i = 0; i < px.length; i += 3) {
    const r = px[i];
    const b = px[i + 2];
    const c0 = bgr ? b : r;
    const c2 = bgr ? r : b;
    px[i] = (c0 - m0) / s0;
    px[i + 1] = (px[i + 1] - m1) / s1;
    px[i + 2] = (c2 - m2) / s2;
  }
}
