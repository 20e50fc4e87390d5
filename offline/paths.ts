import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in `<repo>/offline/`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface DefaultPaths {
  repoRoot: string;
  /** Flickr8k folder: images/, Flickr8k.token.txt, split lists. */
  dataDir: string;
  glovePath: string;
  /** Teacher encoder's tfjs-layers model.json. */
  teacherModel: string;
  /** Feature cache root. */
  cacheDir: string;
  runsDir: string;
}

/** Default locations; each can be overridden by an environment variable. */
export function defaultPaths(env: NodeJS.ProcessEnv = process.env): DefaultPaths {
  const shared = resolve(REPO_ROOT, '..', 'shared', 'data');
  const pick = (name: string, fallback: string): string => (env[name] ? resolve(env[name]!) : fallback);
  return {
    repoRoot: REPO_ROOT,
    dataDir: pick('FLICKR8K_DIR', resolve(shared, 'flickr8k')),
    glovePath: pick('GLOVE_PATH', resolve(shared, 'glove', 'glove.6B.100d.flickr8k.txt')),
    teacherModel: pick('TEACHER_MODEL', resolve(shared, 'mobilenet_v1_0.75_224', 'model.json')),
    cacheDir: pick('CAPTION_CACHE_DIR', resolve(REPO_ROOT, 'cache')),
    runsDir: resolve(REPO_ROOT, 'runs'),
  };
}
