import type { Page } from 'playwright-core';

/**
 * The /v1/captions answers a page's own code receives, in order, recorded inside the page (the
 * inspector may evict response bodies before a test could read them). Call before `page.goto`.
 */
export async function recordCaptionAnswers<T>(page: Page): Promise<() => Promise<{ status: number; url: string; json: T }[]>> {
  await page.addInitScript(() => {
    const w = window as unknown as { __answers: unknown[] };
    w.__answers = [];
    const original = window.fetch.bind(window);
    window.fetch = async (...args: Parameters<typeof fetch>) => {
      const res = await original(...args);
      if (String(args[0]).includes('/v1/captions')) w.__answers.push({ status: res.status, url: String(args[0]), json: await res.clone().json().catch(() => null) });
      return res;
    };
  });
  return () => page.evaluate(() => (window as unknown as { __answers: { status: number; url: string; json: T }[] }).__answers);
}
