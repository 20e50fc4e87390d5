import { tokenize } from './tokenizer';

export const SPECIAL_TOKENS = { pad: '<pad>', start: '<start>', end: '<end>', unknown: '<unk>' } as const;
export type SpecialTokens = typeof SPECIAL_TOKENS;

/** What the bundle stores in vocab.json. */
export interface VocabularyJSON {
  words: string[];
  specialTokens: { pad: string; start: string; end: string; unknown: string };
}

/**
 * Word ↔ id mapping. Ids 0..3 are the special tokens (pad = 0, so padding is all zeros).
 */
export class Vocabulary {
  readonly words: readonly string[];
  readonly padId = 0;
  readonly startId = 1;
  readonly endId = 2;
  readonly unknownId = 3;
  /** Ids no caption contains (padding, <start>, <unk>): searches and samplers never emit them. */
  readonly neverSaidIds: readonly number[] = [this.padId, this.startId, this.unknownId];
  private readonly index: Map<string, number>;

  constructor(words: readonly string[]) {
    const specials = [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.start, SPECIAL_TOKENS.end, SPECIAL_TOKENS.unknown];
    specials.forEach((s, i) => {
      if (words[i] !== s) throw new Error(`vocabulary: word ${i} must be '${s}', got '${words[i]}'`);
    });
    this.words = words;
    this.index = new Map(words.map((w, i) => [w, i]));
    if (this.index.size !== words.length) throw new Error('vocabulary: duplicate words');
  }

  get size(): number {
    return this.words.length;
  }

  /** Builds a vocabulary from training captions: words seen at least `minCount` times, most frequent first. */
  static build(captions: Iterable<string>, minCount = 5): Vocabulary {
    const counts = new Map<string, number>();
    for (const c of captions) for (const w of tokenize(c)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const kept = [...counts.entries()]
      .filter(([, n]) => n >= minCount)
      // Ties broken alphabetically so the same data always gives the same ids.
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([w]) => w);
    return new Vocabulary([SPECIAL_TOKENS.pad, SPECIAL_TOKENS.start, SPECIAL_TOKENS.end, SPECIAL_TOKENS.unknown, ...kept]);
  }

  static fromJSON(json: unknown): Vocabulary {
    const j = json as Partial<VocabularyJSON> | null;
    if (!j || !Array.isArray(j.words) || !j.words.every((w) => typeof w === 'string')) {
      throw new Error('vocabulary: expected { words: string[] }');
    }
    return new Vocabulary(j.words);
  }

  toJSON(): VocabularyJSON {
    return { words: [...this.words], specialTokens: { ...SPECIAL_TOKENS } };
  }

  idOf(word: string): number {
    return this.index.get(word) ?? this.unknownId;
  }

  /** `<start> w1 … wn <end>`, truncated so the whole sequence fits `maxLength` tokens. */
  encode(caption: string, maxLength: number): number[] {
    const ids = tokenize(caption).map((w) => this.idOf(w));
    return [this.startId, ...ids.slice(0, maxLength - 2), this.endId];
  }

  /** Ids to text, stopping at `<end>` and skipping other special tokens. */
  decode(ids: Iterable<number>): string {
    const out: string[] = [];
    for (const id of ids) {
      if (id === this.endId) break;
      if (id <= this.unknownId && id !== this.unknownId) continue;
      out.push(this.words[id] ?? SPECIAL_TOKENS.unknown);
    }
    return out.join(' ');
  }
}
