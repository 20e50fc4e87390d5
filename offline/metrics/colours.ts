import type { CaptionMap } from './bleu';

/** The colour words Flickr8k's captions use most. */
export const COLOUR_WORDS: ReadonlySet<string> = new Set(['red', 'blue', 'black', 'white', 'green', 'yellow', 'pink', 'orange', 'purple', 'brown', 'gray', 'grey', 'tan']);

export interface ColourTally {
  /** Colour words the candidates use (each word once per caption). */
  said: number;
  /** Of those, the ones no reference caption of that image uses: colours most likely made up. */
  unsupported: number;
  /** Captions with at least one unsupported colour. */
  captions: number;
}

/**
 * Colour words a captioner says that none of the image's references does ("a man in a red shirt"
 * for a man in blue): BLEU and CIDEr-D barely notice one wrong word, a reader does. Captions and
 * references arrive tokenized (lower case, space separated), as for the other metrics.
 */
export function unsupportedColours(refs: CaptionMap<string[]>, cands: CaptionMap<string>): ColourTally {
  const refsOf = refs instanceof Map ? refs : new Map(Object.entries(refs));
  const out: ColourTally = { said: 0, unsupported: 0, captions: 0 };
  for (const [id, cand] of cands instanceof Map ? cands : Object.entries(cands)) {
    const refWords = new Set((refsOf.get(id) ?? []).flatMap((r) => r.split(/\s+/)));
    let wrong = 0;
    for (const w of new Set(cand.split(/\s+/))) {
      if (!COLOUR_WORDS.has(w)) continue;
      out.said++;
      if (!refWords.has(w)) wrong++;
    }
    out.unsupported += wrong;
    if (wrong) out.captions++;
  }
  return out;
}
