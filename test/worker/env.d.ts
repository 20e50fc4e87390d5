// The bindings wrangler.toml declares, as seen by tests inside workerd.
declare namespace Cloudflare {
  interface Env {
    ASSETS: Fetcher;
    MAX_BODY_BYTES?: string;
  }
}
