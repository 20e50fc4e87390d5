import type { RgbImage } from '../../shared/image/types';
import { rng } from '../random';

/**
 * Images that are not photos, for checking that confidence flags them: flat colours, noise, a
 * text-like screenshot (dark strokes in lines on white) and a smooth colour gradient.
 */
export function nonPhotos(size = 224): { name: string; image: RgbImage }[] {
  const make = (name: string, px: (x: number, y: number, c: number) => number) => {
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = px(x, y, c);
    return { name, image: { width: size, height: size, data } };
  };
  const r = rng(1);
  const glyph = (x: number, y: number) => {
    const line = Math.floor(y / 16);
    const inLine = y % 16 > 2 && y % 16 < 10 && x > 10 && x < size - 10;
    return inLine && (Math.floor(x / 3) * 7 + line * 13) % 5 !== 0 && x % 9 !== 0;
  };
  return [
    make('blank white', () => 255),
    make('blank black', () => 0),
    make('flat gray', () => 128),
    make('random noise', () => Math.floor(r() * 256)),
    make('text screenshot', (x, y) => (glyph(x, y) ? 20 : 245)),
    make('colour gradient', (x, y, c) => (c === 0 ? Math.round((x * 255) / size) : c === 1 ? Math.round((y * 255) / size) : 128)),
  ];
}
