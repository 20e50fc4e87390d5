import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** A new run folder `<runsDir>/<kind>-<UTC timestamp>` (or the given one, when resuming). */
export function createRunDir(runsDir: string, kind: string, explicit?: string): string {
  const dir = explicit ?? join(runsDir, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
