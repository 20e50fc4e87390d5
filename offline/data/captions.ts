import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';

export interface CaptionDataset {
  imageDir: string;
  /** Image file name → its reference captions; only images present on disk. */
  captions: Map<string, string[]>;
  /** Image names per split, in file order; `unsplit` = captioned images in neither list. */
  splits: { train: string[]; dev: string[]; unsplit: string[] };
  /** Images the annotations list but that are not on disk (dropped everywhere else). */
  missing: string[];
}

export interface SplitFiles {
  train: string;
  dev: string;
}

const TOKEN_FILE = 'Flickr8k.token.txt';
const FLICKR_SPLITS: SplitFiles = { train: 'Flickr_8k.trainImages.txt', dev: 'Flickr_8k.devImages.txt' };
const IMAGE_DIR_NAMES = ['images', 'Images', 'Flicker8k_Dataset', 'Flickr8k_Dataset'];
/** Share of images sent to train when a CSV dataset comes without split lists. */
export const HASH_SPLIT_TRAIN_FRACTION = 0.85;

/** Reads the Flickr8k layout: `Flickr8k.token.txt` (`name.jpg#N<TAB>caption`), split lists, `images/`. */
export function readFlickr8k(dir: string): CaptionDataset {
  const tokenPath = join(dir, TOKEN_FILE);
  const captions = new Map<string, string[]>();
  readFileSync(tokenPath, 'utf8')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim()) return;
      const tab = line.indexOf('\t');
      const hash = line.lastIndexOf('#', tab);
      if (tab < 0 || hash < 0) throw new Error(`${tokenPath}:${i + 1}: expected 'name.jpg#N<TAB>caption', got '${line.slice(0, 80)}'`);
      addCaption(captions, line.slice(0, hash), line.slice(tab + 1));
    });
  const splits = { train: join(dir, FLICKR_SPLITS.train), dev: join(dir, FLICKR_SPLITS.dev) };
  return assemble(findImageDir(dir), captions, readSplitFiles(splits));
}

/**
 * Reads the common `image,caption` CSV (header row, RFC 4180 quoting). Without split lists the
 * images are split deterministically by a hash of their name (85 % train, 15 % dev).
 */
export function readCaptionsCsv(csvPath: string, imageDir: string, splitFiles?: SplitFiles): CaptionDataset {
  const rows = parseCsv(readFileSync(csvPath, 'utf8'));
  const header = (rows.shift() ?? []).map((h) => h.trim().toLowerCase());
  const imageCol = header.indexOf('image');
  const captionCol = header.indexOf('caption');
  if (imageCol < 0 || captionCol < 0) throw new Error(`${csvPath}: the header must name columns 'image' and 'caption', got '${header.join(',')}'`);
  const captions = new Map<string, string[]>();
  rows.forEach((row, i) => {
    if (row.length === 1 && !row[0].trim()) return;
    const name = row[imageCol]?.trim();
    const caption = row[captionCol];
    if (!name || caption === undefined) throw new Error(`${csvPath}: record ${i + 2} has no image or caption`);
    addCaption(captions, name, caption);
  });
  return assemble(imageDir, captions, splitFiles ? readSplitFiles(splitFiles) : undefined);
}

/** A Flickr8k folder, a folder holding `captions.csv`/`captions.txt` (image,caption CSV), or a CSV file. */
export function readDataset(path: string): CaptionDataset {
  const p = resolve(path);
  if (!existsSync(p)) throw new Error(`dataset '${p}' does not exist`);
  if (statSync(p).isDirectory()) {
    if (existsSync(join(p, TOKEN_FILE))) return readFlickr8k(p);
    const csv = ['captions.csv', 'captions.txt'].map((f) => join(p, f)).find(isCaptionCsv);
    if (csv) return readCsvWithNeighbours(csv);
    throw new Error(`dataset folder '${p}' has neither ${TOKEN_FILE} nor captions.csv / captions.txt (image,caption CSV)`);
  }
  if (extname(p).toLowerCase() === '.csv' || isCaptionCsv(p)) return readCsvWithNeighbours(p);
  throw new Error(`dataset '${p}' is not a Flickr8k folder or an image,caption CSV file`);
}

function readCsvWithNeighbours(csv: string): CaptionDataset {
  const dir = dirname(csv);
  const splits = { train: join(dir, FLICKR_SPLITS.train), dev: join(dir, FLICKR_SPLITS.dev) };
  const haveSplits = existsSync(splits.train) && existsSync(splits.dev);
  return readCaptionsCsv(csv, findImageDir(dir), haveSplits ? splits : undefined);
}

function isCaptionCsv(file: string): boolean {
  if (!existsSync(file) || !statSync(file).isFile()) return false;
  const head = readFileSync(file, 'utf8').slice(0, 200).split(/\r?\n/)[0].toLowerCase();
  return /(^|,)\s*"?image"?\s*(,|$)/.test(head) && /(^|,)\s*"?caption"?\s*(,|$)/.test(head);
}

function findImageDir(dir: string): string {
  const found = IMAGE_DIR_NAMES.map((n) => join(dir, n)).find((d) => existsSync(d) && statSync(d).isDirectory());
  return found ?? dir;
}

function addCaption(captions: Map<string, string[]>, name: string, caption: string): void {
  const list = captions.get(name);
  if (list) list.push(caption.trim());
  else captions.set(name, [caption.trim()]);
}

function readSplitFiles(files: SplitFiles): { train: string[]; dev: string[] } {
  const read = (f: string) =>
    readFileSync(f, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean);
  return { train: read(files.train), dev: read(files.dev) };
}

/** Drops images absent on disk (warning once), then builds the splits. */
function assemble(imageDir: string, all: Map<string, string[]>, listed?: { train: string[]; dev: string[] }): CaptionDataset {
  const onDisk = new Set(existsSync(imageDir) ? readdirSync(imageDir) : []);
  const captions = new Map<string, string[]>();
  const missing = new Set<string>();
  for (const [name, caps] of all) {
    if (onDisk.has(name)) captions.set(name, caps);
    else missing.add(name);
  }
  let train: string[];
  let dev: string[];
  let unsplit: string[] = [];
  if (listed) {
    const uncaptioned = new Set<string>();
    const keep = (names: string[]) =>
      [...new Set(names)].filter((n) => {
        if (!onDisk.has(n)) missing.add(n);
        else if (!captions.has(n)) uncaptioned.add(n);
        return captions.has(n);
      });
    train = keep(listed.train);
    dev = keep(listed.dev);
    const inSplit = new Set([...train, ...dev]);
    unsplit = [...captions.keys()].filter((n) => !inSplit.has(n));
    if (uncaptioned.size) warn(`${uncaptioned.size} image(s) in the split lists have no captions and are left out`, [...uncaptioned]);
  } else {
    train = [];
    dev = [];
    for (const name of captions.keys()) (hashFraction(name) < HASH_SPLIT_TRAIN_FRACTION ? train : dev).push(name);
  }
  if (missing.size) warn(`${missing.size} listed image(s) are not in ${imageDir} and are left out`, [...missing]);
  return { imageDir, captions, splits: { train, dev, unsplit }, missing: [...missing] };
}

/** A stable number in [0, 1) from an image name (its base name, so moving folders does not reshuffle). */
function hashFraction(name: string): number {
  return createHash('sha256').update(basename(name)).digest().readUInt32BE(0) / 2 ** 32;
}

function warn(message: string, names: string[]): void {
  const shown = names.slice(0, 5).join(', ');
  console.warn(`warning: ${message}: ${shown}${names.length > 5 ? ', …' : ''}`);
}

/** RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
