import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from './fs-atomic';

/**
 * Rewrites a bundle's manifest.json with `update`'s entries (metrics, confidence, colour check …),
 * atomically, so the model card serves what a command measured. Returns the manifest's path.
 */
export function updateBundleManifest(bundleDir: string, update: (manifest: Record<string, unknown>) => Record<string, unknown>): string {
  const path = join(bundleDir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeJsonAtomic(path, { ...manifest, ...update(manifest) });
  return path;
}
