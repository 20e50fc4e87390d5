import { describe, expect, it } from 'vitest';
import { makeBatches, type Example } from '../offline/train/batches';
import { rng } from '../offline/random';

const caption = (n: number) => [1, ...Array.from({ length: n }, (_, i) => 4 + i), 2];

describe('decoder training batches', () => {
  it('pads each batch to its own longest caption and keeps every example once', () => {
    const examples: Example[] = Array.from({ length: 50 }, (_, i) => ({ rows: [i], ids: caption(1 + (i % 7)) }));
    const batches = makeBatches(examples, 8, rng(1));
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(50);
    expect([...batches.flatMap((b) => [...b.rows])].sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
    for (const b of batches) {
      expect(b.inputs.length).toBe(b.size * b.steps);
      // The longest caption of the batch fills its last step; nothing is scored past a caption's <end>.
      const lastTargets = Array.from({ length: b.size }, (_, r) => b.targets[r * b.steps + b.steps - 1]);
      expect(lastTargets).toContain(2);
    }
  });

  it('draws one of each example’s views per epoch, both over many epochs', () => {
    const examples: Example[] = Array.from({ length: 40 }, (_, i) => ({ rows: [i, 100 + i], ids: caption(3) }));
    const seen = new Map<number, Set<number>>();
    for (let epoch = 0; epoch < 12; epoch++) {
      const rows = makeBatches(examples, 8, rng(epoch)).flatMap((b) => [...b.rows]);
      expect(rows.length).toBe(40);
      // One view per example and epoch.
      expect(new Set(rows.map((r) => r % 100)).size).toBe(40);
      for (const r of rows) seen.set(r % 100, (seen.get(r % 100) ?? new Set()).add(r));
    }
    const both = [...seen.values()].filter((s) => s.size === 2).length;
    expect(both).toBeGreaterThan(30);
  });

  it('the same seed gives the same batches and views (a resumed epoch repeats exactly)', () => {
    const examples: Example[] = Array.from({ length: 30 }, (_, i) => ({ rows: [i, 100 + i], ids: caption(1 + (i % 5)) }));
    const a = makeBatches(examples, 8, rng(3)).map((x) => [...x.rows]);
    expect(makeBatches(examples, 8, rng(3)).map((x) => [...x.rows])).toEqual(a);
    expect(makeBatches(examples, 8, rng(4)).map((x) => [...x.rows])).not.toEqual(a);
  });
});
