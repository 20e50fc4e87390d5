import type * as tf from '@tensorflow/tfjs';
import { decoderWeights } from '../../shared/models/decoder-ops';
import { normalizeCaption } from '../../shared/text/tokenizer';
import type { Vocabulary } from '../../shared/text/vocabulary';
import { summarizeCaptions, type CaptionSetSummary } from '../metrics';
import { captionFeatureSet, selectRows, type FeatureSet } from './caption-features';

export interface FeatureEvaluation {
  /** Says where the figures come from: cached float features, not JPEG bytes through a bundle. */
  source: 'feature cache (float)';
  images: number;
  byBeam: Record<string, CaptionSetSummary>;
}

/**
 * Scores a decoder on cached features for the named photos, per beam width: the evaluation of a
 * decoder no bundle can hold (e.g. one reading several encoders' features side by side).
 */
export function evaluateOnFeatures(o: {
  decoder: tf.LayersModel;
  vocab: Vocabulary;
  features: FeatureSet;
  names: string[];
  references: Map<string, string[]>;
  maxLength: number;
  beams: number[];
}): FeatureEvaluation {
  const set = selectRows(o.features, o.names);
  const refs = new Map(o.names.map((n) => [n, (o.references.get(n) ?? []).map(normalizeCaption)]));
  const weights = decoderWeights(o.decoder);
  const out: FeatureEvaluation = { source: 'feature cache (float)', images: o.names.length, byBeam: {} };
  for (const beam of o.beams) {
    out.byBeam[String(beam)] = summarizeCaptions(refs, captionFeatureSet(weights, o.vocab, set, { beam, maxLength: o.maxLength }));
  }
  return out;
}
