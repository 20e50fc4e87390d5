import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../fs-atomic';

/** The cache key of an image: sha256 of its file bytes, so renamed or moved photos still hit. */
export function imageKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Features on disk, one little-endian float32 file per image:
 * `<root>/<encoderId>/<key[0:2]>/<key>.f32`. Writes are atomic, so an interrupted run leaves
 * only whole files; a file of the wrong size counts as absent (and is deleted).
 */
export class FeatureCache {
  readonly dir: string;

  constructor(
    readonly root: string,
    readonly encoderId: string,
    readonly featureSize: number,
  ) {
    if (!/^[\w.-]+$/.test(encoderId)) throw new Error(`feature cache: bad encoder id '${encoderId}'`);
    this.dir = join(root, encoderId);
  }

  pathOf(imageKey: string): string {
    if (!/^[\w-]{3,}$/.test(imageKey)) throw new Error(`feature cache: bad image key '${imageKey}'`);
    return join(this.dir, imageKey.slice(0, 2), `${imageKey}.f32`);
  }

  has(imageKey: string): boolean {
    try {
      return statSync(this.pathOf(imageKey)).size === this.featureSize * 4;
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
    if (bytes.byteLength !== this.featureSize * 4) {
      rmSync(path, { force: true });
      return undefined;
    }
    // Copy: a Buffer's offset in its pool need not be 4-byte aligned.
    const out = new Float32Array(this.featureSize);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  put(imageKey: string, features: Float32Array): void {
    if (features.length !== this.featureSize) {
      throw new Error(`feature cache: expected ${this.featureSize} features for '${imageKey}', got ${features.length}`);
    }
    writeFileAtomic(this.pathOf(imageKey), new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
  }

  /** Records what produced the features (`<root>/<encoderId>/encoder.json`), for people and tools. */
  writeInfo(info: Record<string, unknown>): void {
    writeJsonAtomic(join(this.dir, 'encoder.json'), { encoderId: this.encoderId, featureSize: this.featureSize, ...info });
  }
}
