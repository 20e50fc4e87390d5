import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fromFloat16, toFloat16 } from '../../shared/bundle/quantize';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';

/** The cache key of an image: sha256 of its file bytes, so renamed or moved photos still hit. */
export function imageKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Features on disk, one little-endian file per image: `<root>/<encoderId>/<key[0:2]>/<key>.f32`
 * (float32), or `.f16` (IEEE half: half the disk, for 7×7 grids of 49 × 1280 values, where the
 * rounding, ≤ 2⁻¹¹ relative, is far below what a decoder can use). Writes are atomic, so an
 * interrupted run leaves only whole files; a file of the wrong size counts as absent (and is deleted).
 */
export class FeatureCache {
  readonly dir: string;
  private readonly bytesPer: number;

  constructor(
    readonly root: string,
    readonly encoderId: string,
    readonly featureSize: number,
    readonly encoding: 'f32' | 'f16' = 'f32',
  ) {
    if (!/^[\w.-]+$/.test(encoderId)) throw new Error(`feature cache: bad encoder id '${encoderId}'`);
    this.dir = join(root, encoderId);
    this.bytesPer = encoding === 'f16' ? 2 : 4;
  }

  pathOf(imageKey: string): string {
    if (!/^[\w-]{3,}$/.test(imageKey)) throw new Error(`feature cache: bad image key '${imageKey}'`);
    return join(this.dir, imageKey.slice(0, 2), `${imageKey}.${this.encoding}`);
  }

  has(imageKey: string): boolean {
    try {
      return statSync(this.pathOf(imageKey)).size === this.featureSize * this.bytesPer;
    } catch {
      return false;
    }
  }

  get(imageKey: string): Float32Array | undefined {
    const path = this.pathOf(imageKey);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      return undefined;
    }
    if (bytes.byteLength !== this.featureSize * this.bytesPer) {
      rmSync(path, { force: true });
      return undefined;
    }
    // Copy: a Buffer's offset in its pool need not be aligned.
    if (this.encoding === 'f16') {
      const halves = new Uint16Array(this.featureSize);
      new Uint8Array(halves.buffer).set(bytes);
      return fromFloat16(halves);
    }
    const out = new Float32Array(this.featureSize);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  put(imageKey: string, features: Float32Array): void {
    if (features.length !== this.featureSize) {
      throw new Error(`feature cache: expected ${this.featureSize} features for '${imageKey}', got ${features.length}`);
    }
    const data = this.encoding === 'f16' ? toFloat16(features) : features;
    writeFileAtomic(this.pathOf(imageKey), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Records what produced the features (`<root>/<encoderId>/encoder.json`), for people and tools. */
  writeInfo(info: Record<string, unknown>): void {
    writeJsonAtomic(join(this.dir, 'encoder.json'), { encoderId: this.encoderId, featureSize: this.featureSize, encoding: this.encoding, ...info });
  }
}
