/*
 * Drop-in alt text: captions the page's images that have no `alt`.
 *
 *   <script src="https://<captioner>/embed.js" data-api="https://<captioner>" defer></script>
 *
 * Attributes on the script tag: data-api (the API origin; default: where this script came from),
 * data-key (an API key, when the deployment requires one), data-select (which images; default
 * `img:not([alt]), img[data-autocaption]`), data-beam (default 3).
 * Images are read in the browser (same-origin or CORS-enabled ones), sent up to 8 per request,
 * and get `alt` plus `data-caption-score`. It never blocks the page: failures are skipped.
 */
(() => {
  const script = document.currentScript;
  if (!script) return;
  const api = (script.dataset.api || new URL(script.src).origin).replace(/\/$/, '');
  const key = script.dataset.key || '';
  const selector = script.dataset.select || 'img:not([alt]), img[data-autocaption]';
  const beam = script.dataset.beam || '3';
  const BATCH = 8;
  const MAX_SIDE = 640; // the model sees a small square: no need to upload more
  const seen = new WeakSet();
  let queue = [];
  let scheduled = false;
  let pausedUntil = 0;

  const loaded = (img) => (img.complete && img.naturalWidth > 0 ? Promise.resolve() : new Promise((resolve, reject) => {
    img.addEventListener('load', resolve, { once: true });
    img.addEventListener('error', reject, { once: true });
  }));

  /** The image's pixels as a JPEG, shrunk; null when the browser may not read them (cross-origin without CORS). */
  async function bytesOf(img) {
    try {
      await loaded(img);
      const res = await fetch(img.currentSrc || img.src, { mode: 'cors', credentials: 'same-origin' });
      if (!res.ok) return null;
      const bitmap = await createImageBitmap(await res.blob());
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
    } catch {
      return null;
    }
  }

  async function send(batch) {
    const form = new FormData();
    const sent = [];
    for (const img of batch) {
      const blob = await bytesOf(img);
      if (blob) {
        form.append('image', blob, 'image.jpg');
        sent.push(img);
      }
    }
    if (!sent.length) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const wait = pausedUntil - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      let res;
      try {
        res = await fetch(`${api}/v1/captions?beam=${encodeURIComponent(beam)}`, { method: 'POST', body: form, headers: key ? { Authorization: `Bearer ${key}` } : {} });
      } catch {
        return; // offline or blocked: leave the images as they are
      }
      if (res.status === 429) {
        // Respect the service's limit: wait as told, then try again.
        pausedUntil = Date.now() + 1000 * (Number(res.headers.get('Retry-After')) || 30);
        continue;
      }
      const answers = await res.json().catch(() => null);
      if (!Array.isArray(answers)) return;
      answers.forEach((a, i) => {
        const img = sent[i];
        if (img && a && typeof a.caption === 'string' && !img.getAttribute('alt')) {
          img.alt = a.caption;
          img.dataset.captionScore = String(a.score);
        }
      });
      return;
    }
  }

  function flush() {
    scheduled = false;
    const all = queue;
    queue = [];
    for (let i = 0; i < all.length; i += BATCH) void send(all.slice(i, i + BATCH));
  }

  function collect(root) {
    const found = root.matches?.(selector) ? [root] : [...(root.querySelectorAll?.(selector) ?? [])];
    for (const img of found) {
      if (seen.has(img) || img.getAttribute('alt')) continue;
      seen.add(img);
      queue.push(img);
    }
    if (queue.length && !scheduled) {
      scheduled = true;
      (window.requestIdleCallback || setTimeout)(flush);
    }
  }

  const start = () => {
    collect(document);
    new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => n.nodeType === 1 && collect(n)))).observe(document.documentElement, { childList: true, subtree: true });
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
  else start();
})();
