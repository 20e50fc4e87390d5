import { expect } from 'vitest';
import { ImageInputError } from '../../shared/image/types';

/** JPEG entropy-coded bit writer for the tests' hand-made JPEGs (byte stuffing, 1-padding). */
export class BitWriter {
  readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;
  write(value: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        if (this.acc === 0xff) this.bytes.push(0); // byte stuffing
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  flush(): number[] {
    if (this.n > 0) this.write((1 << (8 - this.n)) - 1, 8 - this.n); // pad with 1s
    return this.bytes;
  }
}

/** The ImageInputError `f` throws (fails the test if it throws nothing or something else). */
export function errorOf(f: () => unknown): ImageInputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ImageInputError);
    return e as ImageInputError;
  }
  throw new Error('expected an ImageInputError');
}
