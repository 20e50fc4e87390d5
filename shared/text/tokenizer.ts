/**
 * Caption text normalisation: the one tokenizer used to build the vocabulary,
 * to train, to score and to serve.
 */

/** Lower-case, drop punctuation, split on whitespace (as coco-caption's PTB tokenizer leaves words). */
export function tokenize(caption: string): string[] {
  return caption
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .replace(/'/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

/** Tokenized caption as the metrics expect it: words joined by single spaces. */
export function normalizeCaption(caption: string): string {
  return tokenize(caption).join(' ');
}
