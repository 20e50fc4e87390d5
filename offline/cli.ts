#!/usr/bin/env -S npx tsx
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Normalization } from '../shared/bundle/manifest';
import { CAFFE_NORMALIZATION, UNIT_RANGE_NORMALIZATION } from '../shared/image/normalize';
import { QUANTIZATIONS, type Quantization } from '../shared/bundle/manifest';
import { DEFAULT_DECODER_CONFIG, DEFAULT_DISTILL_CONFIG, DEFAULT_FINETUNE_CONFIG, DEFAULT_SCST_CONFIG, type DecoderTrainConfig, type DistillConfig, type FinetuneConfig, type ScstConfig } from './config';
import type { BundleFeatureSource } from './features/feature-rows';
import { defaultPaths } from './paths';

const paths = defaultPaths();
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
};
/** A comma-separated list of bundle quantizations, each checked against the one list the bundle format knows. */
const quantizationList = (v: string): Quantization[] =>
  v.split(',').map((q) => {
    if (!(QUANTIZATIONS as readonly string[]).includes(q)) throw new InvalidArgumentError(`'${q}' is not a quantization; use ${QUANTIZATIONS.join(', ')}`);
    return q as Quantization;
  });
const normalizations = { unit: UNIT_RANGE_NORMALIZATION, caffe: CAFFE_NORMALIZATION };
const NORMALIZATION_MODES = ['auto', ...Object.keys(normalizations)];
/** 'auto': the model's own normalization.json (written by import-tflite) when there is one, else unit. */
function normalizationFor(mode: string, modelPath: string): Normalization {
  if (mode !== 'auto') return normalizations[mode as keyof typeof normalizations];
  const own = join(dirname(modelPath), 'normalization.json');
  return existsSync(own) ? (JSON.parse(readFileSync(own, 'utf8')) as Normalization) : UNIT_RANGE_NORMALIZATION;
}
type EncoderFlags = { encoder: string; layer?: string; normalization: string };

/** What every training command takes: its run folder (an existing one resumes), epochs and learning rate. */
const trainingRunOptions = (cmd: Command, o: { epochs: number; lr: number; lrHelp?: string }) =>
  cmd
    .option('--run <dir>', 'run folder (an existing one resumes)')
    .option('--epochs <n>', 'epochs (more than a finished run had: it is extended)', int, o.epochs)
    .option('--lr <x>', o.lrHelp ?? 'Adam learning rate', num, o.lr);

const encoderOptions = (cmd: Command) =>
  cmd
    .option('--encoder <model.json>', 'tfjs-layers model used as the image encoder (env TEACHER_MODEL)', paths.teacherModel)
    .option('--layer <name>', 'layer whose output is the feature (default: the model output)', 'global_average_pooling2d_1')
    .addOption(new Option('--normalization <mode>', "pixel normalisation the encoder expects ('auto': the model's normalization.json, else unit)").choices(NORMALIZATION_MODES).default('auto'))
    .option('--cache <dir>', 'feature cache folder (env CAPTION_CACHE_DIR)', paths.cacheDir);

/** For commands that read a bundle's features: its own encoder's, or another copy's already in the cache. */
const bundleFeatureOptions = (cmd: Command) =>
  cmd
  .option('--encoder <model.json>', "encoder whose features the decoder reads (default: the bundle's own)")
  .option('--layer <name>', 'layer of --encoder whose output is the feature (default: its output)')
  .option('--grid-layer <name>', "layer of --encoder an attention decoder reads (default: the bundle's encoder.grid.layer)")
  .addOption(new Option('--normalization <mode>', "pixel normalisation of --encoder (default: the bundle's)").choices(NORMALIZATION_MODES))
  .option('--cache <dir>', 'feature cache folder (env CAPTION_CACHE_DIR)', paths.cacheDir);

const bundleFeatureFlags = (f: { encoder?: string; layer?: string; gridLayer?: string; normalization?: string; cache: string }): BundleFeatureSource => ({
  encoderModel: f.encoder,
  encoderLayer: f.layer,
  gridLayer: f.gridLayer,
  normalization: f.normalization ? normalizationFor(f.normalization, f.encoder ?? '') : undefined,
  cacheDir: f.cache,
});

const program = new Command()
  .name('offline')
  .description('Offline pipeline: captioned images → cached CNN features → LSTM decoder → metrics → quantized bundle')
  .option('--data <path>', 'the captioned photos: a Flickr8k-layout folder, or your own folder with captions.csv (header image,caption; the photos beside it or in images/; split 85/15 train/dev by name hash unless Flickr_8k.trainImages.txt / devImages.txt are there) (env FLICKR8K_DIR)', paths.dataDir)
  // Every command's --help lists --data too: it is where a user's own photos go.
  .configureHelp({ showGlobalOptions: true });

encoderOptions(program.command('features').description('precompute encoder features for the train and dev splits into the cache'))
  .option('--batch-size <n>', 'images per encoder batch', int, 16)
  .option('--float16', 'store float16 (half the disk) and hold nothing in memory: for 7×7 grids, e.g. --layer MobilenetEdgeTPU_Conv_1_Relu_relu')
  .action(async (flags: EncoderFlags & { cache: string; batchSize: number; float16?: boolean }) => {
    const { featuresCommand } = await import('./commands/features');
    await featuresCommand({ dataPath: program.opts().data, encoderModel: flags.encoder, encoderLayer: flags.layer, normalization: normalizationFor(flags.normalization, flags.encoder), cacheDir: flags.cache, batchSize: flags.batchSize, float16: Boolean(flags.float16) });
  });

const d = DEFAULT_DECODER_CONFIG;
trainingRunOptions(encoderOptions(program.command('train').description('train the caption decoder (runs every stage it needs, reusing cached results), then evaluate and export')), { epochs: d.epochs, lr: d.learningRate })
  .option('--glove <path>', 'GloVe text file for the embeddings (env GLOVE_PATH)', paths.glovePath)
  .option('--no-glove', 'learn embeddings from scratch')
  .option('--batch-size <n>', 'captions per batch', int, d.batchSize)
  .option('--units <n>', 'LSTM units', int, d.units)
  .option('--grid-layer <name>', 'also attend over this encoder layer\'s 7×7 grid (e.g. block5_conv3 of a compact VGG16, MobilenetEdgeTPU_Conv_1_Relu_relu); cached as float16')
  .option('--attention-size <n>', 'projected grid size the attention works in', int, d.attentionSize)
  .option('--attention-temperature <x>', 'attention scores = this × cosine(query, cell)', num, d.attentionTemperature)
  .option('--attention-coverage <x>', "weight of the term spreading each caption's attention over the grid (0 = off)", num, d.attentionCoverage)
  .option('--embedding-size <n>', 'word embedding size (GloVe: 100)', int, d.embeddingSize)
  .option('--dropout <p>', 'dropout rate', num, d.dropout)
  .option('--lr-decay <x>', 'learning rate factor per epoch', num, d.lrDecay)
  .option('--patience <n>', 'early-stopping patience in epochs', int, d.patience)
  .option('--min-word-count <n>', 'vocabulary minimum count', int, d.minWordCount)
  .option('--max-length <n>', 'longest token sequence incl. <start>/<end>', int, d.maxLength)
  .option('--dev-eval-images <n>', 'dev images scored each epoch (0 = all)', int, d.devEvalImages)
  .option('--eval-images <n>', 'dev images for the final bundle evaluation (0 = all)', int, 0)
  .option('--seed <n>', 'random seed', int, d.seed)
  .option('--init-from <run>', 'start from a finished decoder run (its vocabulary and best weights)')
  .option('--extra-captions <csv>', 'more training captions for train photos, an image,caption CSV (e.g. offline:teacher-captions output)')
  .option('--concat <model.json#layer>', "append another encoder's pooled feature (repeatable; normalization auto): a concatenation of teachers, scored on cached dev features since a bundle holds one encoder", (v: string, all: string[]) => [...all, v], [] as string[])
  .option('--quantizations <list>', `bundles to export and score, comma-separated (${QUANTIZATIONS.join(', ')})`, quantizationList, ['none', 'uint8'])
  .option('--no-export', 'skip export and bundle evaluation')
  .action(async (f) => {
    const { trainCommand } = await import('./commands/train');
    const config: DecoderTrainConfig = {
      ...d,
      epochs: f.epochs,
      batchSize: f.batchSize,
      units: f.units,
      attentionSize: f.attentionSize,
      attentionTemperature: f.attentionTemperature,
      attentionCoverage: f.attentionCoverage,
      embeddingSize: f.embeddingSize,
      dropout: f.dropout,
      learningRate: f.lr,
      lrDecay: f.lrDecay,
      patience: f.patience,
      minWordCount: f.minWordCount,
      maxLength: f.maxLength,
      devEvalImages: f.devEvalImages,
      seed: f.seed,
    };
    await trainCommand({
      dataPath: program.opts().data,
      glovePath: f.glove === false ? null : f.glove,
      encoderModel: f.encoder,
      encoderLayer: f.layer,
      gridLayer: f.gridLayer,
      normalization: normalizationFor(f.normalization, f.encoder),
      cacheDir: f.cache,
      runsDir: paths.runsDir,
      runDir: f.run,
      config,
      export: f.export,
      quantizations: f.quantizations,
      evalImages: f.evalImages,
      initFrom: f.initFrom,
      extraCaptions: f.extraCaptions,
      concat: (f.concat as string[]).map((spec) => {
        const [modelPath, layer] = spec.split('#');
        return { modelPath, layer: layer || undefined, normalization: normalizationFor('auto', modelPath) };
      }),
    });
  });

bundleFeatureOptions(program.command('teacher-captions'))
  .description("caption every train photo with a (stronger) bundle's decoder from cached features: an image,caption CSV for train --extra-captions (sequence-level distillation)")
  .requiredOption('--from <bundle>', 'the teacher bundle, e.g. runs/<run>/bundle-none')
  .option('--beam <n>', 'beam width', int, 3)
  .option('--per-photo <n>', "captions per photo: the beam's n best (n ≤ beam), or n samples with --sample", int, 1)
  .option('--sample', "draw the captions from the decoder's distribution (temperature 1) instead of beam search")
  .option('--seed <n>', 'random seed for --sample', int, 1)
  .option('--out <dir>', 'where to write captions.csv and summary.json (default: a new run folder)')
  .action(async (f) => {
    const { teacherCaptionsCommand } = await import('./commands/teacher-captions');
    await teacherCaptionsCommand({
      dataPath: program.opts().data,
      from: f.from,
      ...bundleFeatureFlags(f),
      runsDir: paths.runsDir,
      outDir: f.out,
      beam: f.beam,
      perPhoto: f.perPhoto,
      sample: Boolean(f.sample),
      seed: f.seed,
    });
  });

const sc = DEFAULT_SCST_CONFIG;
trainingRunOptions(bundleFeatureOptions(program.command('scst')), { epochs: sc.epochs, lr: sc.learningRate })
  .description("self-critical training of a bundle's decoder on CIDEr-D (after cross-entropy), then evaluate and export")
  .requiredOption('--from <bundle>', 'bundle to start from, e.g. assets/model or runs/<decoder run>/bundle-none')
  .option('--batch-images <n>', 'photos per step', int, sc.batchImages)
  .option('--samples <n>', 'captions sampled per photo (≥ 2)', int, sc.samples)
  .option('--lr-decay <x>', 'learning rate factor per epoch', num, sc.lrDecay)
  .option('--patience <n>', 'early-stopping patience in epochs', int, sc.patience)
  .option('--checkpoint-every <n>', 'steps between mid-epoch checkpoints', int, sc.checkpointEvery)
  .option('--xe-weight <x>', 'weight of a cross-entropy term on reference captions added to the SCST loss (0 = pure SCST)', num, sc.xeWeight)
  .option('--dev-eval-images <n>', 'dev images scored each epoch (0 = all)', int, sc.devEvalImages)
  .option('--eval-images <n>', 'dev images for the final bundle evaluation (0 = all)', int, 0)
  .option('--seed <n>', 'random seed', int, sc.seed)
  .option('--quantizations <list>', `bundles to export and score, comma-separated (${QUANTIZATIONS.join(', ')})`, quantizationList, ['none', 'uint8'])
  .option('--no-export', 'skip export and bundle evaluation')
  .action(async (f) => {
    if (f.samples < 2) throw new InvalidArgumentError('--samples must be at least 2 (the baseline is the mean of the other samples)');
    const { scstCommand } = await import('./commands/scst');
    const config: ScstConfig = {
      ...sc,
      epochs: f.epochs,
      batchImages: f.batchImages,
      samples: f.samples,
      learningRate: f.lr,
      lrDecay: f.lrDecay,
      patience: f.patience,
      checkpointEvery: f.checkpointEvery,
      xeWeight: f.xeWeight,
      devEvalImages: f.devEvalImages,
      seed: f.seed,
    };
    await scstCommand({
      dataPath: program.opts().data,
      from: f.from,
      ...bundleFeatureFlags(f),
      runsDir: paths.runsDir,
      runDir: f.run,
      config,
      export: f.export,
      quantizations: f.quantizations,
      evalImages: f.evalImages,
    });
  });

const ft = DEFAULT_FINETUNE_CONFIG;
trainingRunOptions(program.command('finetune'), { epochs: ft.epochs, lr: ft.decoderLearningRate, lrHelp: "the decoder's Adam learning rate" })
  .description("fine-tune a bundle's compact VGG16 encoder and its decoder together on caption cross-entropy, then evaluate and export")
  .requiredOption('--from <bundle>', 'bundle to start from, e.g. assets/model')
  .option('--encoder-lr <x>', "the encoder's Adam learning rate (lower: the distilled features move slowly)", num, ft.encoderLearningRate)
  .option('--anchor-weight <x>', "weight of the pull towards the starting encoder's pooled features", num, ft.anchorWeight)
  .option('--batch-images <n>', 'photos per step (each with all its captions)', int, ft.batchImages)
  .option('--dropout <p>', "the decoder's dropout while fine-tuning", num, ft.dropout)
  .option('--lr-decay <x>', 'learning rate factor per epoch', num, ft.lrDecay)
  .option('--patience <n>', 'early-stopping patience in epochs', int, ft.patience)
  .option('--checkpoint-every <n>', 'steps between mid-epoch checkpoints', int, ft.checkpointEvery)
  .option('--dev-eval-images <n>', 'dev images scored each epoch (0 = all)', int, ft.devEvalImages)
  .option('--eval-images <n>', 'dev images for the final bundle evaluation (0 = all)', int, 0)
  .option('--seed <n>', 'random seed', int, ft.seed)
  .option('--quantizations <list>', `bundles to export and score, comma-separated (${QUANTIZATIONS.join(', ')})`, quantizationList, ['none', 'uint8'])
  .option('--no-export', 'skip export and bundle evaluation')
  .action(async (f) => {
    const { finetuneCommand } = await import('./commands/finetune');
    const config: FinetuneConfig = {
      ...ft,
      epochs: f.epochs,
      batchImages: f.batchImages,
      encoderLearningRate: f.encoderLr,
      decoderLearningRate: f.lr,
      lrDecay: f.lrDecay,
      anchorWeight: f.anchorWeight,
      dropout: f.dropout,
      patience: f.patience,
      checkpointEvery: f.checkpointEvery,
      devEvalImages: f.devEvalImages,
      seed: f.seed,
    };
    await finetuneCommand({ dataPath: program.opts().data, from: f.from, runsDir: paths.runsDir, runDir: f.run, config, export: f.export, quantizations: f.quantizations, evalImages: f.evalImages });
  });

program
  .command('evaluate')
  .description('score a bundle on the dev split end to end (greedy and beam), write metrics JSON and an HTML gallery')
  .requiredOption('--bundle <dir>', 'bundle folder (manifest.json …)')
  .option('--beams <list>', 'beam widths, comma-separated', '1,3')
  .option('--images <n>', 'dev images (0 = all)', int, 0)
  .option('--out <dir>', 'where to write metrics.json and gallery.html (default: a new run folder)')
  .option('--attention-photos <n>', 'attention bundles: also attention.html with the maps of n dev photos', int, 0)
  .option('--focus-word <word>', 'attention.html shows photos captioned with this word first', 'dog')
  .action(async (f) => {
    const { evaluateCommand } = await import('./commands/evaluate');
    await evaluateCommand({ dataPath: program.opts().data, bundleDir: f.bundle, beams: String(f.beams).split(',').map(Number), images: f.images, outDir: f.out, runsDir: paths.runsDir, attentionPhotos: f.attentionPhotos, focusWord: f.focusWord });
  });

program
  .command('calibrate')
  .description("fit a bundle's caption confidence on the dev split (Spearman with per-image CIDEr-D, non-photo check) and write it into its manifest")
  .requiredOption('--bundle <dir>', 'bundle folder (its manifest.json gains a `confidence` entry)')
  .option('--train-images <n>', 'training photos for the image statistics (0 = all)', int, 0)
  .option('--beam <n>', 'beam width of the dev captions (the API default)', int, 3)
  .option('--run <dir>', 'run folder for summary.json')
  .action(async (f) => {
    const { calibrateCommand } = await import('./commands/calibrate');
    await calibrateCommand({ dataPath: program.opts().data, bundleDir: f.bundle, runsDir: paths.runsDir, runDir: f.run, trainImages: f.trainImages, beam: f.beam });
  });

program
  .command('colour-check')
  .description("fit which colour words a caption may use for a photo (before offline:calibrate), pick the threshold on dev, write it and the dev metrics measured with it into the bundle's manifest")
  .requiredOption('--bundle <dir>', 'bundle folder (its manifest.json gains a `colourCheck` entry)')
  .option('--thresholds <list>', 'thresholds tried on dev, comma-separated', '0.1,0.2,0.3,0.4,0.5,0.6,0.7')
  .option('--max-cider-loss <x>', 'keep the largest threshold whose dev beam-3 CIDEr-D is at most this much below no check', num, 0.005)
  .option('--steps <n>', 'Adam steps of the logistic regressions', int, 300)
  .option('--run <dir>', 'run folder for summary.json')
  .action(async (f) => {
    const { colourCheckCommand } = await import('./commands/colour-check');
    await colourCheckCommand({ dataPath: program.opts().data, bundleDir: f.bundle, runsDir: paths.runsDir, runDir: f.run, thresholds: String(f.thresholds).split(',').map(Number), maxCiderLoss: f.maxCiderLoss, steps: f.steps });
  });

program
  .command('export')
  .description("re-export a bundle with another quantization, atomically (e.g. into assets/model)")
  .requiredOption('--bundle <dir>', 'source bundle (best: an unquantized one)')
  .requiredOption('--out <dir>', 'destination folder, replaced atomically')
  .addOption(new Option('--quantization <q>', 'weight encoding').choices([...QUANTIZATIONS]).default('uint8'))
  .option('--fold-projection', "fold the encoder's linear projection into the decoder and colour check (fewer weights to serve; the features become the pooled head's)")
  .action(async (f) => {
    const { exportCommand } = await import('./commands/export');
    await exportCommand({ bundleDir: f.bundle, outDir: f.out, quantization: f.quantization, foldProjection: Boolean(f.foldProjection) });
  });

program
  .command('import-keras')
  .description('convert a Keras VGG16 HDF5 weight file (full or _notop) into a tfjs-layers model.json for --encoder / --teacher')
  .requiredOption('--h5 <file>', 'Keras weight file, e.g. vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5')
  .requiredOption('--out <dir>', 'destination folder (model.json + weights.bin), replaced atomically')
  .addOption(new Option('--output <mode>', "'pooled' (global average pooling after block5) or the full file's fc2 / predictions").choices(['pooled', 'fc2', 'predictions']).default('pooled'))
  .option('--input-size <n>', "square input side (default: 224 for 'pooled', the one fc1 fits otherwise)", int)
  .action(async (f) => {
    const { importKerasCommand } = await import('./commands/import-keras');
    await importKerasCommand({ h5Path: f.h5, outDir: f.out, output: f.output, inputSize: f.inputSize });
  });

program
  .command('import-tflite')
  .description('convert a TFLite image model (uint8/int8 or float) into a float tfjs-layers model.json for --encoder / --teacher')
  .requiredOption('--tflite <file>', 'TFLite flatbuffer, e.g. ../shared/data/teachers/mobilenet_edgetpu_224_1.0_uint8.tflite')
  .requiredOption('--out <dir>', 'destination folder (model.json, weights, normalization.json, layers.json), replaced atomically')
  .action(async (f) => {
    const { importTfliteCommand } = await import('./commands/import-tflite');
    await importTfliteCommand({ tflitePath: f.tflite, outDir: f.out });
  });

const dc = DEFAULT_DISTILL_CONFIG;
trainingRunOptions(program.command('distill'), { epochs: dc.epochs, lr: dc.learningRate, lrHelp: 'peak Adam learning rate (cosine decay)' })
  .description('distil a compact VGG16 from a teacher CNN on the train split (+ unsplit photos), with checkpoints and resume')
  .option('--teacher <model.json>', 'teacher tfjs-layers model (env TEACHER_MODEL)', paths.teacherModel)
  .option('--teacher-layer <name>', 'teacher layer whose output the student learns', 'global_average_pooling2d_1')
  .option('--teacher-grid-layer <name>', "spatial distillation: the teacher's 7×7 grid layer the student's last grid learns through a 1×1 projection, e.g. MobilenetEdgeTPU_Conv_1_Relu_relu")
  .option('--grid-weight <x>', "weight of the grid's loss next to the pooled feature's", num, dc.gridWeight)
  .addOption(new Option('--teacher-normalization <mode>', "pixel normalisation the teacher expects ('auto': its normalization.json, else unit)").choices(NORMALIZATION_MODES).default('auto'))
  .option('--cache <dir>', 'feature cache folder (env CAPTION_CACHE_DIR)', paths.cacheDir)
  .option('--width <x>', 'width multiplier on VGG16 channels', num, dc.widthMultiplier)
  .option('--input-size <n>', 'student input side (multiple of 32)', int, dc.inputSize)
  .option('--head <n>', "channels of a 1×1 head convolution pooled over the last grid (0 = VGG16's max-pool head)", int, dc.headChannels)
  .option('--init-student <model.json>', "start a fresh run from this student's layers that match by name and shape (e.g. assets/model/encoder/model.json)")
  .option('--batch-size <n>', 'views per step', int, dc.batchSize)
  .option('--warmup-steps <n>', 'linear learning-rate warm-up steps', int, dc.warmupSteps)
  .option('--dev-images <n>', 'dev images for the fidelity check (0 = all)', int, dc.devImages)
  .option('--decoder-bundle <dir>', 'bundle whose decoder was trained on teacher features: dev CIDEr-D on student features each epoch')
  .option('--max-steps <n>', 'stop after this many steps (benchmarks; resume later)', int)
  .option('--batch-norm', 'batch-normalise while training (folded on export; ~2× slower steps on wasm)', dc.batchNorm)
  .addOption(new Option('--targets <mode>', "teacher targets: 'cached-views' (photo + mirror, computed once) or 'per-step' (teacher on every augmented view)").choices(['cached-views', 'per-step']).default(dc.targets))
  .option('--threads <n>', 'threads computing gradients, incl. the main one (data parallel; with --batch-norm each normalises its own slice)', int, dc.threads)
  .option('--seed <n>', 'random seed', int, dc.seed)
  .action(async (f) => {
    const { distillCommand } = await import('./commands/distill');
    const config: DistillConfig = { ...dc, gridWeight: f.gridWeight, widthMultiplier: f.width, inputSize: f.inputSize, headChannels: f.head, epochs: f.epochs, batchSize: f.batchSize, learningRate: f.lr, warmupSteps: f.warmupSteps, devImages: f.devImages, seed: f.seed, batchNorm: Boolean(f.batchNorm), targets: f.targets, threads: f.threads };
    await distillCommand({
      dataPath: program.opts().data,
      teacherModel: f.teacher,
      teacherLayer: f.teacherLayer,
      teacherGridLayer: f.teacherGridLayer,
      teacherNormalization: normalizationFor(f.teacherNormalization, f.teacher),
      cacheDir: f.cache,
      runsDir: paths.runsDir,
      runDir: f.run,
      config,
      decoderBundle: f.decoderBundle,
      initStudent: f.initStudent,
      maxSteps: f.maxSteps,
    });
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
