import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../offline/backend';

const resolvable = (pkg: string) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};

describe('selectBackend', () => {
  it('falls back to wasm when no native tfjs package is installed', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const native = resolvable('@tensorflow/tfjs-node-gpu') || resolvable('@tensorflow/tfjs-node');
    const name = await selectBackend('');
    expect(name).toBe(native ? 'tensorflow' : 'wasm');
    expect(String(log.mock.calls.at(-1)?.[0])).toMatch(/^tfjs backend: /);
    log.mockRestore();
  });

  it('rejects an unknown name, listing the valid ones', async () => {
    await expect(selectBackend('gpu')).rejects.toThrow(/unknown tfjs backend 'gpu': valid names are node-gpu, node, wasm, cpu/);
  });

  it('errors clearly when a forced backend is unavailable', async () => {
    if (resolvable('@tensorflow/tfjs-node')) return;
    await expect(selectBackend('node')).rejects.toThrow(/'node' is unavailable: @tensorflow\/tfjs-node is not available/);
  });
});
