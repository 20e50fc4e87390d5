import { describe, expect, it } from 'vitest';
import { normalizeCaption, tokenize } from '../shared/text/tokenizer';
import { Vocabulary } from '../shared/text/vocabulary';

describe('tokenizer', () => {
  it('lower-cases, drops punctuation and splits', () => {
    expect(tokenize('A dog, running  through the GRASS .')).toEqual(['a', 'dog', 'running', 'through', 'the', 'grass']);
    expect(normalizeCaption("The man's red-shirt!")).toBe('the man s red shirt');
  });
});

describe('Vocabulary', () => {
  const vocab = Vocabulary.build(['a dog runs', 'a dog sits', 'a cat sits', 'a bird'], 2);

  it('keeps words at the minimum count, most frequent first, after the special tokens', () => {
    expect(vocab.words).toEqual(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'sits']);
  });

  it('encodes with start/end, maps unknown words, truncates to maxLength', () => {
    expect(vocab.encode('A dog flies', 10)).toEqual([1, 4, 5, 3, 2]);
    expect(vocab.encode('a dog sits a dog sits', 5)).toEqual([1, 4, 5, 6, 2]);
  });

  it('decodes up to <end>, skipping pad and start', () => {
    expect(vocab.decode([1, 4, 5, 6, 2, 4])).toBe('a dog sits');
    expect(vocab.decode([0, 4, 3])).toBe('a <unk>');
  });

  it('round-trips through JSON and rejects a malformed one', () => {
    expect(Vocabulary.fromJSON(JSON.parse(JSON.stringify(vocab.toJSON()))).words).toEqual(vocab.words);
    expect(() => Vocabulary.fromJSON({ words: ['a', 'b'] })).toThrow(/word 0 must be '<pad>'/);
    expect(() => Vocabulary.fromJSON({})).toThrow(/expected/);
  });
});
