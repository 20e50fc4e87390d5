import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { selectBackend, type ModuleImporter } from '../offline/backend';

const resolvable = (pkg: string) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};

/** A machine without the native packages, whatever this one has installed. */
const noNative: ModuleImporter = (spec) => Promise.reject(new Error(`Cannot find package '${spec}'`));
/** A native package that loads but registers no 'tensorflow' backend (a tfjs version mismatch). */
const mismatchedNative: ModuleImporter = async () => ({});

describe('selectBackend', () => {
  const log = vi.spyOn(console, 'error').mockImplementation(() => {});
  afterEach(() => log.mockClear());

  // These come first: a real native load (on a machine that has one) is process-wide.
  it('without native packages, falls back to wasm and says why each faster one was skipped', async () => {
    expect(await selectBackend('', noNative)).toBe('wasm');
    const line = String(log.mock.calls.at(-1)?.[0]);
    expect(line).toMatch(/^tfjs backend: wasm \(SIMD, single-threaded\)/);
    expect(line).toContain("@tensorflow/tfjs-node-gpu is not available (Cannot find package '@tensorflow/tfjs-node-gpu')");
    expect(line).toContain("@tensorflow/tfjs-node is not available (Cannot find package '@tensorflow/tfjs-node')");
  });

  it('a forced backend that is unavailable fails with the reason', async () => {
    await expect(selectBackend('node', noNative)).rejects.toThrow(/tfjs backend 'node' is unavailable: @tensorflow\/tfjs-node is not available \(Cannot find package/);
    await expect(selectBackend('node-gpu', mismatchedNative)).rejects.toThrow(/'node-gpu' is unavailable: .*registered no 'tensorflow' backend/);
  });

  it('forced wasm and cpu are honoured', async () => {
    expect(await selectBackend('wasm', noNative)).toBe('wasm');
    expect(await selectBackend('CPU', noNative)).toBe('cpu');
    expect(await selectBackend('auto', noNative)).toBe('wasm');
  });

  it('rejects an unknown name, listing the valid ones', async () => {
    await expect(selectBackend('gpu')).rejects.toThrow(/unknown tfjs backend 'gpu': valid names are node-gpu, node, wasm, cpu/);
  });

  it('on this machine: tensorflow when a native package is installed, else wasm', async () => {
    const native = resolvable('@tensorflow/tfjs-node-gpu') || resolvable('@tensorflow/tfjs-node');
    expect(await selectBackend('')).toBe(native ? 'tensorflow' : 'wasm');
    expect(String(log.mock.calls.at(-1)?.[0])).toMatch(/^tfjs backend: /);
  });
});
