import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../shared/bundle/load';
import { serializeLayersModel } from '../shared/bundle/model-io';
import { buildCompactVgg16 } from '../shared/models/vgg16';
import { selectBackend } from '../offline/backend';
import { recoverDir, writeDirAtomic, writeFileAtomic } from '../offline/fs-atomic';
import { fileSource } from '../offline/fs-source';
import { writeTinyFlickr, writeTinyGlove } from './helpers/tiny-dataset';

/**
 * SIGKILL the offline CLI mid-run, as a power cut or an OOM killer would, then run it again:
 * it must resume (not start over), and what it leaves on disk must never be half-written.
 */
const root = mkdtempSync(join(tmpdir(), 'kill-'));
const data = join(root, 'flickr');
const encoderPath = join(root, 'encoder', 'model.json');
const FEATURES = 16;

beforeAll(async () => {
  await selectBackend();
  writeTinyFlickr(data, 20); // 60 photos
  writeTinyGlove(join(root, 'glove.txt'), 8);
  // Big enough that encoding 60 photos one by one takes a few seconds: time to kill it.
  const encoder = buildCompactVgg16({ widthMultiplier: 1 / 4, inputSize: 96, featureSize: FEATURES }, { seed: 5 });
  for (const [p, b] of await serializeLayersModel(encoder, '', 'none')) writeFileAtomic(join(root, 'encoder', p), b);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `offline/cli.ts` in one node process (no tsx wrapper, so SIGKILL hits the worker itself). */
function cli(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'offline/cli.ts', '--data', data, ...args], {
    cwd: join(__dirname, '..'),
    env: { ...process.env, CI: 'true', TFJS_BACKEND: 'wasm' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

/** Polls `test` every 10 ms; SIGKILLs the child as soon as it holds. Fails if the child ends first. */
async function killWhen(run: ReturnType<typeof cli>, test: () => boolean): Promise<void> {
  let exited = false;
  void run.done.then(() => (exited = true));
  while (!exited && !test()) await new Promise((r) => setTimeout(r, 10));
  if (exited) throw new Error(`the process ended before the kill point:\n${(await run.done).stderr}`);
  run.child.kill('SIGKILL');
  expect((await run.done).signal).toBe('SIGKILL');
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

const featureFiles = (cache: string) => filesUnder(cache).filter((f) => f.endsWith('.f32'));
const featureArgs = (cache: string) => ['features', '--encoder', encoderPath, '--layer', '', '--cache', cache, '--batch-size', '1'];

describe('SIGKILL and resume', () => {
  it('feature precompute: the cache holds only whole entries, and the rerun computes just the rest', async () => {
    const cache = join(root, 'cache');
    await killWhen(cli(featureArgs(cache)), () => featureFiles(cache).length >= 5);
    const survived = featureFiles(cache);
    expect(survived.length).toBeLessThan(60);
    for (const f of survived) expect(statSync(f).size, f).toBe(FEATURES * 4);

    const rerun = await cli(featureArgs(cache)).done;
    expect(rerun.code, rerun.stderr).toBe(0);
    const m = /(\d+) computed at .* (\d+) from cache, 0 failed/.exec(rerun.stderr);
    expect(m, rerun.stderr).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThanOrEqual(survived.length);
    expect(Number(m![1]) + Number(m![2])).toBe(60);

    // Same bytes as a run that was never interrupted.
    const clean = join(root, 'cache-clean');
    expect((await cli(featureArgs(clean)).done).code).toBe(0);
    const rel = (dir: string) => featureFiles(dir).map((f) => f.slice(dir.length)).sort();
    expect(rel(cache)).toEqual(rel(clean));
    for (const f of rel(clean)) expect(readFileSync(join(cache, f)).equals(readFileSync(join(clean, f))), f).toBe(true);
  }, 120_000);

  it('decoder training: resumes from the last whole epoch and ends where an uninterrupted run ends', async () => {
    const cache = join(root, 'cache');
    const trainArgs = (run: string) => [
      'train', '--encoder', encoderPath, '--layer', '', '--cache', cache, '--glove', join(root, 'glove.txt'), '--run', run,
      '--epochs', '8', '--units', '16', '--embedding-size', '8', '--batch-size', '16', '--min-word-count', '1', '--max-length', '8',
      '--patience', '100', '--quantizations', 'none', '--eval-images', '3',
    ];
    const killed = join(root, 'run-killed');
    const epochOf = () => {
      try {
        return (JSON.parse(readFileSync(join(killed, 'state.json'), 'utf8')) as { epoch: number }).epoch;
      } catch {
        return 0;
      }
    };
    await killWhen(cli(trainArgs(killed)), () => epochOf() >= 3);
    const rerun = await cli(trainArgs(killed)).done;
    expect(rerun.code, rerun.stderr).toBe(0);
    const resumed = /resuming .* after epoch (\d+)/.exec(rerun.stderr);
    expect(resumed, rerun.stderr).not.toBeNull();
    expect(Number(resumed![1])).toBeGreaterThanOrEqual(3);
    expect(Number(resumed![1])).toBeLessThan(8);

    const straight = join(root, 'run-straight');
    expect((await cli(trainArgs(straight)).done).code).toBe(0);
    const history = (dir: string) => (JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { history: { trainLoss: number }[] }).history;
    expect(history(killed)).toHaveLength(8);
    // Equal up to float rounding: tfjs's Adam recomputes beta^t on restore instead of carrying its running product.
    const a = history(killed).map((h) => h.trainLoss);
    const b = history(straight).map((h) => h.trainLoss);
    a.forEach((x, i) => expect(Math.abs(x - b[i]) / b[i], `epoch ${i + 1}`).toBeLessThan(1e-5));
    const wa = new Float32Array(new Uint8Array(readFileSync(join(killed, 'checkpoint', 'weights.bin'))).buffer);
    const wb = new Float32Array(new Uint8Array(readFileSync(join(straight, 'checkpoint', 'weights.bin'))).buffer);
    expect(wa.length).toBe(wb.length);
    expect(wa.reduce((m, x, i) => Math.max(m, Math.abs(x - wb[i])), 0)).toBeLessThan(1e-4);
  }, 180_000);

  it('export: a kill at any moment leaves the old bundle or the whole new one, never a mix', async () => {
    const run = join(root, 'run-straight');
    const out = join(root, 'assets-model');
    // The old bundle: float32. Each kill interrupts a uint8 export over it.
    expect((await cli(['export', '--bundle', join(run, 'bundle-none'), '--out', out, '--quantization', 'none']).done).code).toBe(0);
    const kinds = new Set<string>();
    for (const delayMs of [300, 600, 900, 1200, 1500, 1800]) {
      const r = cli(['export', '--bundle', join(run, 'bundle-none'), '--out', out, '--quantization', 'uint8']);
      await new Promise((res) => setTimeout(res, delayMs));
      r.child.kill('SIGKILL');
      await r.done;
      expect(recoverDir(out)).toBe(true);
      const b = await loadBundle(fileSource(out));
      kinds.add(b.manifest.quantization);
      b.encoder.dispose();
      b.decoder.dispose();
      // Back to the old bundle for the next round.
      if (b.manifest.quantization === 'uint8') expect((await cli(['export', '--bundle', join(run, 'bundle-none'), '--out', out, '--quantization', 'none']).done).code).toBe(0);
    }
    expect(kinds.has('none')).toBe(true);
    expect(readdirSync(root).filter((e) => e.startsWith('assets-model.'))).toEqual([]);
    // A finished re-quantizing export does not carry the float bundle's measured metrics over.
    expect((await loadBundle(fileSource(join(run, 'bundle-none')))).manifest.metrics).toBeDefined();
    expect((await cli(['export', '--bundle', join(run, 'bundle-none'), '--out', out, '--quantization', 'uint8']).done).code).toBe(0);
    const u = await loadBundle(fileSource(out));
    expect(u.manifest.quantization).toBe('uint8');
    expect(u.manifest.metrics).toBeUndefined();
  }, 180_000);

  it('recoverDir puts the last whole directory back after a kill between the two renames', () => {
    const dest = join(root, 'swap', 'bundle');
    writeDirAtomic(dest, new Map([['a.txt', new TextEncoder().encode('old')]]));
    // The state a kill leaves between `rename(dest → old)` and `rename(tmp → dest)`.
    const stamp = `1-${Date.now()}`;
    renameSync(dest, `${dest}.old-${stamp}`);
    mkdirSync(`${dest}.tmp-${stamp}`);
    writeFileSync(join(`${dest}.tmp-${stamp}`, 'a.txt'), 'half');
    expect(existsSync(dest)).toBe(false);
    expect(recoverDir(dest)).toBe(true);
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('old');
    expect(readdirSync(join(root, 'swap'))).toEqual(['bundle']);
    writeDirAtomic(dest, new Map([['a.txt', new TextEncoder().encode('new')]]));
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('new');
    expect(readdirSync(join(root, 'swap'))).toEqual(['bundle']);
  });
});
