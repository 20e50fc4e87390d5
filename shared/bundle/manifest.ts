import { colourCheckProblems, type ColourCheck } from '../colour-check';
import { confidenceModelProblems, type ConfidenceModel } from '../confidence';
/**
 * The model bundle's manifest: the one contract between the offline pipeline and the worker.
 * A bundle is a folder: manifest.json, encoder/model.json + shards, decoder/model.json + shards,
 * vocab.json. Weight files are plain tfjs-layers artifacts (quantized with tfjs's own
 * `weightsManifest[].weights[].quantization`), so stock tfjs can load them too, except the 4-bit
 * matrices of a 'uint4' bundle (`quantization: { dtype: 'uint4' }`, layout in uint4.ts).
 */
export const BUNDLE_FORMAT = 'edge-captioner-bundle';
export const BUNDLE_FORMAT_VERSION = 1;

/** 'uint4': the decoder's large matrices 4-bit per column, the encoder as 'uint8' (quantize.ts). */
export type Quantization = 'none' | 'float16' | 'uint8' | 'uint4';
export const QUANTIZATIONS: readonly Quantization[] = ['none', 'float16', 'uint8', 'uint4'];

export interface Normalization {
  /** Channel order the encoder expects. */
  channelOrder: 'rgb' | 'bgr';
  /** Per-channel value subtracted from pixels in 0..255, in the encoder's channel order. */
  mean: [number, number, number];
  /** Per-channel divisor applied after the subtraction. */
  std: [number, number, number];
}

export interface EncoderSpec {
  architecture: 'compact-vgg16' | 'tfjs-layers';
  /** Path of the tfjs-layers model.json, relative to the manifest. */
  modelPath: string;
  inputSize: number;
  normalization: Normalization;
  featureSize: number;
  widthMultiplier?: number;
  /** Channels of the 1×1 head convolution (compact VGG16 with a wide head); absent = VGG16's own head. */
  headChannels?: number;
  params?: number;
  flops?: number;
  /** The layer whose [rows, cols, channels] output an attention decoder reads, besides the feature. */
  grid?: { layer: string; shape: [number, number, number] };
}

export type DecoderArchitecture = 'lstm-inject-merge' | 'lstm-attention';

export interface DecoderSpec {
  /** 'lstm-attention': also attends over the encoder's grid (`encoder.grid`); its rows sum to 1 per word. */
  architecture: DecoderArchitecture;
  modelPath: string;
  vocabSize: number;
  embeddingSize: number;
  units: number;
  maxLength: number;
  /** 'lstm-attention' only: the grid it attends over and the projected size. */
  attention?: { grid: [number, number]; channels: number; size: number };
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  id: string;
  version: string;
  createdAt: string;
  description?: string;
  encoder: EncoderSpec;
  decoder: DecoderSpec;
  vocabulary: { path: string; specialTokens: { pad: string; start: string; end: string; unknown: string } };
  quantization: Quantization;
  /** Free-form provenance: data, commands, run ids. */
  training?: Record<string, unknown>;
  /** Dev-split metrics, e.g. { greedy: { bleu4, ciderD }, beam3: {…} }. */
  metrics?: Record<string, unknown>;
  /** Calibration of caption confidence (`offline:calibrate`); absent: captions carry none. */
  confidence?: ConfidenceModel;
  /** Colour words beam search may not use for a photo unless likely (`offline:colour-check`); absent: no check. */
  colourCheck?: ColourCheck;
  limits?: string[];
}

export class BundleError extends Error {
  constructor(message: string) {
    super(`model bundle: ${message}`);
    this.name = 'BundleError';
  }
}

type Check = [ok: boolean, problem: string];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
const str = (v: unknown): boolean => typeof v === 'string' && v.length > 0;
const triple = (v: unknown): boolean => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

const intList = (v: unknown, n: number): v is number[] => Array.isArray(v) && v.length === n && v.every(posInt);

/** An attention decoder needs the encoder's grid, and both must describe the same grid. */
function attentionProblems(e: Record<string, unknown>, d: Record<string, unknown>): string[] {
  const g = isObj(e.grid) ? e.grid : undefined;
  const problems: string[] = [];
  if (e.grid !== undefined && !(g && str(g.layer) && intList(g.shape, 3))) problems.push('encoder.grid must be { layer, shape: [rows, cols, channels] }');
  if (d.architecture !== 'lstm-attention') return problems;
  const a = isObj(d.attention) ? d.attention : undefined;
  if (!(a && intList(a.grid, 2) && posInt(a.channels) && posInt(a.size))) return [...problems, "decoder.attention must be { grid: [rows, cols], channels, size } for 'lstm-attention'"];
  if (!g) return [...problems, "an 'lstm-attention' decoder needs encoder.grid (the layer it attends over)"];
  const [r, c, ch] = g.shape as number[];
  const [ar, ac] = a.grid as number[];
  if (r !== ar || c !== ac || ch !== a.channels) problems.push(`decoder.attention expects a ${ar}×${ac}×${a.channels} grid, encoder.grid gives ${r}×${c}×${ch}`);
  return problems;
}

/** Validates a parsed manifest; throws a BundleError naming every field that does not fit. */
export function validateManifest(json: unknown): BundleManifest {
  if (!isObj(json)) throw new BundleError('manifest.json is not a JSON object');
  if (json.format !== BUNDLE_FORMAT) throw new BundleError(`manifest.format must be '${BUNDLE_FORMAT}', got ${JSON.stringify(json.format)}`);
  if (json.formatVersion !== BUNDLE_FORMAT_VERSION) {
    throw new BundleError(`manifest.formatVersion ${JSON.stringify(json.formatVersion)} is not supported (this code reads version ${BUNDLE_FORMAT_VERSION})`);
  }
  const e = isObj(json.encoder) ? json.encoder : {};
  const d = isObj(json.decoder) ? json.decoder : {};
  const v = isObj(json.vocabulary) ? json.vocabulary : {};
  const n = isObj(e.normalization) ? e.normalization : {};
  const checks: Check[] = [
    [str(json.id), 'id must be a non-empty string'],
    [str(json.version), 'version must be a non-empty string'],
    [isObj(json.encoder), 'encoder must be an object'],
    [e.architecture === 'compact-vgg16' || e.architecture === 'tfjs-layers', "encoder.architecture must be 'compact-vgg16' or 'tfjs-layers'"],
    [str(e.modelPath), 'encoder.modelPath must be a path'],
    [posInt(e.inputSize), 'encoder.inputSize must be a positive integer'],
    [posInt(e.featureSize), 'encoder.featureSize must be a positive integer'],
    [n.channelOrder === 'rgb' || n.channelOrder === 'bgr', "encoder.normalization.channelOrder must be 'rgb' or 'bgr'"],
    [triple(n.mean), 'encoder.normalization.mean must be 3 numbers'],
    [triple(n.std) && (n.std as number[]).every((x) => x !== 0), 'encoder.normalization.std must be 3 non-zero numbers'],
    [isObj(json.decoder), 'decoder must be an object'],
    [d.architecture === 'lstm-inject-merge' || d.architecture === 'lstm-attention', "decoder.architecture must be 'lstm-inject-merge' or 'lstm-attention'"],
    [str(d.modelPath), 'decoder.modelPath must be a path'],
    [posInt(d.vocabSize), 'decoder.vocabSize must be a positive integer'],
    [posInt(d.embeddingSize), 'decoder.embeddingSize must be a positive integer'],
    [posInt(d.units), 'decoder.units must be a positive integer'],
    [posInt(d.maxLength) && (d.maxLength as number) >= 2, 'decoder.maxLength must be an integer ≥ 2'],
    [str(v.path), 'vocabulary.path must be a path'],
    [isObj(v.specialTokens), 'vocabulary.specialTokens must be an object'],
    [QUANTIZATIONS.includes(json.quantization as Quantization), `quantization must be one of ${QUANTIZATIONS.join(', ')}`],
  ];
  const problems = checks.filter(([ok]) => !ok).map(([, p]) => p);
  problems.push(...attentionProblems(e, d));
  if (json.confidence !== undefined) problems.push(...confidenceModelProblems(json.confidence));
  if (json.colourCheck !== undefined) problems.push(...colourCheckProblems(json.colourCheck, e.featureSize as number));
  if (problems.length) throw new BundleError(`invalid manifest.json: ${problems.join('; ')}`);
  return json as unknown as BundleManifest;
}
