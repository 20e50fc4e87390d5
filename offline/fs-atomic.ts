import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Writes a file so a reader sees the old or the new content, never half of it (tmp + fsync + rename). */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Replaces directory `dest` with a fully written `files` set: written to a sibling tmp directory,
 * then swapped in with renames, so an interrupted write never leaves a half-written `dest`.
 */
export function writeDirAtomic(dest: string, files: ReadonlyMap<string, Uint8Array>): void {
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = `${dest}.tmp-${stamp}`;
  const old = `${dest}.old-${stamp}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [p, bytes] of files) writeFileAtomic(join(tmp, p), bytes);
  let moved = false;
  try {
    renameSync(dest, old);
    moved = true;
  } catch {
    // No previous directory.
  }
  renameSync(tmp, dest);
  if (moved) rmSync(old, { recursive: true, force: true });
}
