/** Where bundle files come from: the Workers ASSETS binding, the file system, or memory (tests). */
export interface BundleSource {
  /** A short description for error messages, e.g. "assets:/model/". */
  readonly description: string;
  /** Bytes of a file, path relative to the bundle root; rejects with a message naming the path when missing. */
  read(path: string): Promise<Uint8Array>;
}

/** A bundle held in memory as path → bytes (what `writeBundle` produces). */
export function memorySource(files: ReadonlyMap<string, Uint8Array>, description = 'memory'): BundleSource {
  return {
    description,
    async read(path) {
      const bytes = files.get(normalizePath(path));
      if (!bytes) throw new Error(`${description}: no file '${path}'`);
      return bytes;
    },
  };
}

/** Joins bundle-relative paths ("decoder/model.json" + "group1-shard1of1.bin") and removes "./". */
export function joinPath(dir: string, file: string): string {
  return normalizePath(dir ? `${dir}/${file}` : file);
}

export function normalizePath(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) throw new Error(`bundle path '${path}' leaves the bundle`);
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
