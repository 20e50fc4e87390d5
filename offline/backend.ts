import * as tf from '@tensorflow/tfjs';

export const BACKEND_CHOICES = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

const NATIVE_PACKAGES = { 'node-gpu': '@tensorflow/tfjs-node-gpu', node: '@tensorflow/tfjs-node' } as const;

// Both native packages register the backend name 'tensorflow', so a process loads at most one.
let nativeLoaded: keyof typeof NATIVE_PACKAGES | undefined;

/** How a native package is loaded; tests replace it to simulate machines with and without one. */
export type ModuleImporter = (spec: string) => Promise<unknown>;
const importModule: ModuleImporter = (spec) => import(spec);

async function tryNative(which: keyof typeof NATIVE_PACKAGES, load: ModuleImporter): Promise<string | undefined> {
  if (nativeLoaded && nativeLoaded !== which) return `${NATIVE_PACKAGES[nativeLoaded]} is already loaded in this process`;
  if (!nativeLoaded) {
    const spec: string = NATIVE_PACKAGES[which]; // a variable, so bundlers and tsc leave the optional import alone
    try {
      await load(spec);
    } catch (e) {
      return `${spec} is not available (${firstLine(e)})`;
    }
    nativeLoaded = which;
  }
  if (!tf.findBackendFactory('tensorflow')) return `${NATIVE_PACKAGES[which]} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs (version mismatch?)`;
  if (!(await tf.setBackend('tensorflow'))) return `${NATIVE_PACKAGES[which]}: the 'tensorflow' backend failed to initialise`;
  return undefined;
}

async function tryWasm(): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    return `@tensorflow/tfjs-backend-wasm is not available (${firstLine(e)})`;
  }
  return (await tf.setBackend('wasm')) ? undefined : "the 'wasm' backend failed to initialise";
}

async function tryCpu(): Promise<string | undefined> {
  return (await tf.setBackend('cpu')) ? undefined : "the 'cpu' backend failed to initialise";
}

const attempts = (load: ModuleImporter): Record<BackendChoice, () => Promise<string | undefined>> => ({
  'node-gpu': () => tryNative('node-gpu', load),
  node: () => tryNative('node', load),
  wasm: tryWasm,
  cpu: tryCpu,
});

/**
 * Picks the fastest tfjs backend available: tfjs-node-gpu, tfjs-node, wasm, cpu (the native
 * packages are optional). `preferred` ('node-gpu' | 'node' | 'wasm' | 'cpu'; empty or 'auto' =
 * fastest) forces one and throws if it cannot be used. Returns `tf.getBackend()`.
 */
export async function selectBackend(preferred: string | undefined = process.env.TFJS_BACKEND, load: ModuleImporter = importModule): Promise<string> {
  const wanted = preferred?.trim().toLowerCase();
  let order: readonly BackendChoice[];
  if (!wanted || wanted === 'auto') order = BACKEND_CHOICES;
  else if ((BACKEND_CHOICES as readonly string[]).includes(wanted)) order = [wanted as BackendChoice];
  else throw new Error(`unknown tfjs backend '${preferred}': valid names are ${BACKEND_CHOICES.join(', ')} (or auto)`);

  const skipped: string[] = [];
  for (const choice of order) {
    const problem = await attempts(load)[choice]();
    if (problem === undefined) {
      await tf.ready();
      console.error(`tfjs backend: ${describe(choice)}${skipped.length ? ` [skipped: ${skipped.join('; ')}]` : ''}`);
      return tf.getBackend();
    }
    if (order.length === 1) throw new Error(`tfjs backend '${choice}' is unavailable: ${problem}`);
    skipped.push(problem);
  }
  throw new Error(`no tfjs backend could be initialised: ${skipped.join('; ')}`);
}

function describe(choice: BackendChoice): string {
  if (choice === 'node-gpu' || choice === 'node') return `tensorflow (${NATIVE_PACKAGES[choice]})`;
  if (choice === 'wasm') {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'multi-threaded' : 'single-threaded'})`;
  }
  return 'cpu (plain JavaScript, slow)';
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
