import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadServingBundle } from '../shared/bundle/load';
import { memorySource } from '../shared/bundle/source';
import { warmupBundle, warmupJpeg } from '../shared/bundle/warmup-bundle';
import { loadCaptioner } from '../shared/captioner';
import { decodeImage } from '../shared/image/decode';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('isolate warm-up bundle and photo', () => {
  it('load through the serving path (core-ops encoder, attention, uint4, uint8 and float16) and caption', async () => {
    const files = warmupBundle();
    const specs = JSON.parse(new TextDecoder().decode(files.get('decoder/model.json')!)).weightsManifest[0].weights as { quantization: { dtype: string } }[];
    // Every dequantization path runs: the output kernel uint4, the embedding uint8, the rest float16.
    expect(new Set(specs.map((w) => w.quantization.dtype))).toEqual(new Set(['uint4', 'uint8', 'float16']));
    const bundle = await loadServingBundle(memorySource(files));
    // Written straight in the uint4 layout: the reader finds the 16 levels of the ±0.5 values.
    const logits = Array.from(bundle.decoder.logits.kernel.dataSync());
    expect(new Set(logits.map((x) => Math.round((x + 0.5) * 15 * 1000) / 1000))).toEqual(new Set(Array.from({ length: 16 }, (_, i) => i)));
    expect(bundle.encoderPath).toBe('ops');
    expect(bundle.decoder.attention?.config).toEqual({ grid: [4, 4], channels: 8, size: 4, temperature: 10 });
    bundle.dispose();

    const image = decodeImage(warmupJpeg());
    expect([image.width, image.height]).toEqual([24, 16]);
    // The gradient it was made from: red grows with x, green with y.
    const px = (x: number, y: number) => [...image.data.subarray((y * 24 + x) * 3, (y * 24 + x) * 3 + 3)];
    expect(px(22, 1)[0] - px(1, 1)[0]).toBeGreaterThan(150);
    expect(px(1, 14)[1] - px(1, 1)[1]).toBeGreaterThan(150);

    const captioner = await loadCaptioner(memorySource(files), { warmup: false });
    const before = tf.memory().numTensors;
    const a = captioner.caption(image, { beam: 3 });
    expect(a.caption.split(' ').every((w) => /^(w\d+|red|blue)$/.test(w))).toBe(true);
    // The colour check and the confidence ran too: what the shipped bundle's first caption needs.
    expect(captioner.manifest.colourCheck?.words).toEqual(['red', 'blue']);
    expect(a.confidence).toBeGreaterThanOrEqual(0);
    expect(a.confidence).toBeLessThanOrEqual(1);
    // Deterministic weights: the same caption every time (no random values in a Worker's global scope).
    const again = await loadCaptioner(memorySource(warmupBundle()), { warmup: false });
    expect(again.caption(image, { beam: 3 }).caption).toBe(a.caption);
    captioner.dispose();
    again.dispose();
  });
});
