import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { normalizePath, type BundleSource } from '../shared/bundle/source';

/** A bundle (or any tfjs-layers model folder) on the local file system. */
export function fileSource(dir: string): BundleSource {
  const root = resolve(dir);
  return {
    description: root,
    async read(path) {
      const file = join(root, normalizePath(path));
      try {
        return new Uint8Array(await readFile(file));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(`${root}: cannot read '${path}' (${code ?? (e as Error).message})`);
      }
    },
  };
}
