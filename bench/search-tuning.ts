/**
 * Decoding choices measured on the dev split from cached encoder features: beam search's length
 * penalty (score = logProb / length^alpha) and averaging each photo's features with its mirror
 * image's (test-time augmentation, twice the encoder time at serving). Prints BLEU-1/4, CIDEr-D
 * and mean caption length per variant.
 *
 *   npx tsx bench/search-tuning.ts --bundle runs/decoder-student2/bundle-none \
 *     --encoder runs/distill-w025-s112-bn/student/model.json --layer ''
 */
import { Command } from 'commander';
import { decoderWeights } from '../shared/models/decoder-ops';
import { captionFeatureSet, type FeatureSet } from '../offline/evaluate/caption-features';
import { scoreCaptions } from '../offline/metrics';
import { devFeatureOptions, loadDevFeatures, writeDevReport, type DevFeatureArgs } from './dev-features';

const args = devFeatureOptions(new Command(), 'runs/search-tuning.json').option('--penalties <list>', 'beam-3 length penalties to try', '0,0.5,0.75,1,1.25').parse().opts();
const dev = await loadDevFeatures({ ...(args as DevFeatureArgs), mirrored: true });
const mirrorAverage: FeatureSet = { ...dev.set, matrix: dev.set.matrix.map((v, i) => (v + dev.mirrored!.matrix[i]) / 2) };
const w = decoderWeights(dev.bundle.decoder);
const maxLength = dev.bundle.manifest.decoder.maxLength;
const penalties = String(args.penalties).split(',').map(Number);

const rows: Record<string, string | number>[] = [];
for (const [features, set] of [['photo', dev.set], ['photo + mirror averaged', mirrorAverage]] as const) {
  for (const [beam, lengthPenalty] of [[1, 1], ...penalties.map((p) => [3, p])]) {
    const caps = captionFeatureSet(w, dev.bundle.vocabulary, set, { beam, maxLength, lengthPenalty });
    const s = scoreCaptions(dev.refs, caps);
    const words = [...caps.values()].reduce((n, c) => n + c.split(' ').length, 0) / caps.size;
    const row = { features, beam, lengthPenalty: beam === 1 ? '-' : lengthPenalty, B1: s.bleu1.toFixed(4), B4: s.bleu4.toFixed(4), 'CIDEr-D': s.ciderD.toFixed(4), words: words.toFixed(2) };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
}
console.log(`decoder of ${args.bundle} on ${dev.set.names.length} dev images (cached ${dev.encoderId} features)`);
console.table(rows);
writeDevReport(args.out, dev, args.bundle, rows);
