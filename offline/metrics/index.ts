import { type CaptionMap, corpusBleu } from './bleu';
import { ciderD } from './cider';
import { unsupportedColours, type ColourTally } from './colours';

export * from './bleu';
export * from './cider';
export * from './colours';

export interface CaptionScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  ciderD: number;
  perImage: Record<string, { bleu4: number; ciderD: number }>;
}

/** A caption set's corpus scores, how many distinct captions it has, and its made-up colours. */
export type CaptionSetSummary = Omit<CaptionScores, 'perImage'> & { distinct: number; colours: ColourTally };

/** Corpus BLEU-1..4 and CIDEr-D, distinct captions and unsupported colour words of one caption set. */
export function summarizeCaptions(refs: Map<string, string[]>, caps: Map<string, string>): CaptionSetSummary {
  const { perImage: _perImage, ...scores } = scoreCaptions(refs, caps);
  return { ...scores, distinct: new Set(caps.values()).size, colours: unsupportedColours(refs, caps) };
}

/** Corpus BLEU-1..4 and CIDEr-D plus per-image BLEU-4 / CIDEr-D, coco-caption style. */
export function scoreCaptions(refs: CaptionMap<string[]>, cands: CaptionMap<string>): CaptionScores {
  const b = corpusBleu(refs, cands);
  const c = ciderD(refs, cands);
  const perImage: CaptionScores['perImage'] = {};
  for (const id of Object.keys(b.perImage)) perImage[id] = { bleu4: b.perImage[id][3], ciderD: c.perImage[id] };
  return { bleu1: b.bleu[0], bleu2: b.bleu[1], bleu3: b.bleu[2], bleu4: b.bleu[3], ciderD: c.score, perImage };
}
