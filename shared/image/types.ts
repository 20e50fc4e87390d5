/** Decoded image: RGB, 3 bytes per pixel, row-major, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type ImageInputErrorCode = 'unsupported_media_type' | 'undecodable_image' | 'image_too_large';

const STATUS: Record<ImageInputErrorCode, 413 | 415 | 422> = {
  unsupported_media_type: 415,
  undecodable_image: 415,
  image_too_large: 413,
};

/** A client-side problem with the submitted image; `status` is the HTTP status to answer with. */
export class ImageInputError extends Error {
  readonly code: ImageInputErrorCode;
  readonly status: 413 | 415 | 422;

  constructor(code: ImageInputErrorCode, message: string) {
    super(message);
    this.name = 'ImageInputError';
    this.code = code;
    this.status = STATUS[code];
  }
}

export const ACCEPTED_IMAGE_TYPES = ['image/jpeg', 'image/png'] as const;
