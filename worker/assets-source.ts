import type { BundleSource } from '../shared/bundle/source';
import { joinPath } from '../shared/bundle/source';

/** Bundle files served by the Workers static-assets binding under `prefix` (default `/model/`). */
export function assetsSource(assets: Fetcher, prefix = 'model'): BundleSource {
  return {
    description: `assets:/${prefix}/`,
    async read(path) {
      // The host is never contacted: the binding resolves the path inside the deployed assets.
      const res = await assets.fetch(new Request(`https://assets.local/${joinPath(prefix, path)}`));
      if (!res.ok) throw new Error(`assets:/${joinPath(prefix, path)} answered ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}
