import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from './backend';
import { writeJsonAtomic } from './fs-atomic';
import { registerWasmTrainingKernels } from './wasm-kernels';

/** A new run folder `<runsDir>/<kind>-<UTC timestamp>` (or the given one, when resuming). */
export function createRunDir(runsDir: string, kind: string, explicit?: string): string {
  const dir = explicit ?? join(runsDir, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The opening of every training command: the fastest tfjs backend (with the training kernels
 * tfjs-wasm lacks), the run folder, and its `config.json` with what the run was asked to do.
 */
export async function openTrainingRun(kind: string, o: { runsDir: string; runDir?: string }, log: (line: string) => void): Promise<{ backend: string; runDir: string }> {
  const backend = await selectBackend();
  if (backend === 'wasm') registerWasmTrainingKernels();
  const runDir = createRunDir(o.runsDir, kind, o.runDir);
  log(`run folder: ${runDir}`);
  writeJsonAtomic(join(runDir, 'config.json'), { ...o, backend, startedAt: new Date().toISOString() });
  return { backend, runDir };
}
