import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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
 * A kill between the two renames leaves `dest` missing and the previous one as `dest.old-*`;
 * `recoverDir` (run here first, and by readers that resume from `dest`) puts it back.
 */
export function writeDirAtomic(dest: string, files: ReadonlyMap<string, Uint8Array>): void {
  recoverDir(dest);
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = `${dest}.tmp-${stamp}`;
  const old = `${dest}.old-${stamp}`;
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

/**
 * Repairs what an interrupted `writeDirAtomic` can leave next to `dest`: half-written
 * `dest.tmp-*` folders are deleted, and if `dest` itself is missing, the newest `dest.old-*` (the
 * last complete version) is renamed back. Returns whether `dest` exists afterwards.
 */
export function recoverDir(dest: string): boolean {
  const parent = dirname(dest);
  const name = basename(dest);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return false;
  }
  const stampOf = (e: string) => Number(e.slice(e.lastIndexOf('-') + 1));
  for (const e of entries) if (e.startsWith(`${name}.tmp-`)) rmSync(join(parent, e), { recursive: true, force: true });
  const olds = entries.filter((e) => e.startsWith(`${name}.old-`)).sort((a, b) => stampOf(b) - stampOf(a));
  if (olds.length && !existsSync(dest)) renameSync(join(parent, olds.shift()!), dest);
  for (const e of olds) rmSync(join(parent, e), { recursive: true, force: true });
  return existsSync(dest);
}
