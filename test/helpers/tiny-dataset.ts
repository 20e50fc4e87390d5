import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';

const COLOURS: Record<string, [number, number, number]> = { red: [220, 30, 30], blue: [30, 40, 220], green: [30, 200, 40] };
const THINGS = ['dog', 'ball'];

/**
 * A tiny captioned image set in Flickr8k layout: flat-colour photos whose captions name the
 * colour, so even a few training steps can learn something image-dependent.
 */
export function writeTinyFlickr(dir: string, perClass = 4): { names: string[]; captionOf: Map<string, string> } {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const tokens: string[] = [];
  const names: string[] = [];
  const captionOf = new Map<string, string>();
  let i = 0;
  for (const [colour, rgb] of Object.entries(COLOURS)) {
    for (let k = 0; k < perClass; k++) {
      const thing = THINGS[k % THINGS.length];
      const name = `${1000 + i}_${(i * 2654435761 >>> 0).toString(16).padStart(10, '0').slice(0, 10)}.jpg`;
      const w = 40;
      const data = new Uint8Array(w * w * 4);
      // The texture's phase differs per photo, so no two files (and cache keys) are the same.
      for (let p = 0; p < w * w; p++) data.set([rgb[0] + ((p * 7 + i) % 20), rgb[1], rgb[2], 255], p * 4);
      writeFileSync(join(dir, 'images', name), jpeg.encode({ width: w, height: w, data }, 90).data);
      const caps = [`A ${colour} ${thing} .`, `a ${colour} ${thing} on the grass`, `the ${colour} ${thing}`, `A ${thing} that is ${colour}`, `${colour} ${thing}`];
      caps.forEach((c, n) => tokens.push(`${name}#${n}\t${c}`));
      names.push(name);
      captionOf.set(name, caps[0]);
      i++;
    }
  }
  writeFileSync(join(dir, 'Flickr8k.token.txt'), tokens.join('\n') + '\n');
  const train = names.filter((_, j) => j % 4 !== 3);
  const dev = names.filter((_, j) => j % 4 === 3);
  writeFileSync(join(dir, 'Flickr_8k.trainImages.txt'), train.join('\n') + '\n');
  writeFileSync(join(dir, 'Flickr_8k.devImages.txt'), dev.join('\n') + '\n');
  return { names, captionOf };
}

/** A GloVe text file with a few of the tiny set's words (one-letter words absent, as in the real one). */
export function writeTinyGlove(path: string, dim: number): void {
  const words = ['red', 'blue', 'green', 'dog', 'ball', 'the', 'grass', 'on'];
  writeFileSync(path, words.map((w, i) => `${w} ${Array.from({ length: dim }, (_, d) => (Math.sin(i * 3 + d) * 0.5).toFixed(4)).join(' ')}`).join('\n') + '\n');
}
