import { pathToFileURL } from 'node:url';

export interface GalleryItem {
  name: string;
  imagePath: string;
  captions: { label: string; text: string; ciderD?: number; bleu4?: number }[];
  references: string[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A static HTML page: each image with its generated captions, per-image scores and the references. */
export function galleryHtml(title: string, summary: Record<string, unknown>, items: GalleryItem[]): string {
  const rows = items
    .map(
      (it) => `<figure><img loading="lazy" src="${pathToFileURL(it.imagePath).href}" alt="${esc(it.name)}"><figcaption>
<div class="name">${esc(it.name)}</div>
${it.captions.map((c) => `<p><b>${esc(c.label)}:</b> ${esc(c.text)} <span class="s">${c.ciderD !== undefined ? `CIDEr-D ${c.ciderD.toFixed(3)}` : ''}${c.bleu4 !== undefined ? ` · BLEU-4 ${c.bleu4.toFixed(3)}` : ''}</span></p>`).join('\n')}
<ol>${it.references.map((r) => `<li>${esc(r)}</li>`).join('')}</ol></figcaption></figure>`,
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}figure{display:flex;gap:1em;border-bottom:1px solid #ddd;padding:1em 0;margin:0}
img{width:224px;height:224px;object-fit:cover;flex:none}.name{color:#777;font-size:12px}.s{color:#070;font-size:12px}ol{color:#555;margin:.3em 0}pre{background:#f6f6f6;padding:1em}</style></head>
<body><h1>${esc(title)}</h1><pre>${esc(JSON.stringify(summary, null, 2))}</pre>
${rows}</body></html>`;
}
