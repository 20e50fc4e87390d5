import type { Normalization } from '../../shared/bundle/manifest';
import { selectBackend } from '../backend';
import { readDataset } from '../data/captions';
import { loadFeatureEncoder } from '../features/encoder';
import { precomputeFeatures } from '../features/precompute';

export interface FeaturesCommandOptions {
  dataPath: string;
  encoderModel: string;
  encoderLayer?: string;
  normalization: Normalization;
  cacheDir: string;
  batchSize: number;
  /** Store float16 and keep nothing in memory: for 7×7 grids (e.g. --layer MobilenetEdgeTPU_Conv_1_Relu_relu). */
  float16?: boolean;
}

/** `offline:features`: fills the feature cache for the train and dev splits (and the unsplit photos). */
export async function featuresCommand(o: FeaturesCommandOptions): Promise<void> {
  const backend = await selectBackend();
  const dataset = readDataset(o.dataPath);
  const encoder = await loadFeatureEncoder({ modelPath: o.encoderModel, layer: o.encoderLayer, normalization: o.normalization });
  const names = [...dataset.splits.train, ...dataset.splits.dev, ...dataset.splits.unsplit];
  const r = await precomputeFeatures({ dataset, names, encoder, cacheDir: o.cacheDir, batchSize: o.batchSize, float16: o.float16, collect: !o.float16 });
  const shape = encoder.model.outputs[0].shape.slice(1).join('×');
  console.error(
    `features (${backend}, encoder ${encoder.id}${o.float16 ? '-f16' : ''}, ${shape}${o.float16 ? ' float16' : ''}): ${r.names.length} images — ` +
      `${r.stats.computed} computed at ${r.stats.imagesPerSecond.toFixed(1)} images/s, ${r.stats.fromCache} from cache, ${r.stats.failed.length} failed`,
  );
  for (const f of r.stats.failed.slice(0, 10)) console.error(`  failed: ${f.name}: ${f.reason}`);
}
