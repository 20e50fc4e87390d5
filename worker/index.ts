import { createApp } from './app';
import { warmIsolate } from './isolate-warmup';

export type { AppType } from './app';

// At start-up, before any request: the first request's caption then runs on compiled code.
warmIsolate();

/** The Worker: the captioning API over the bundle in assets/model/ (static assets serve the upload page). */
export default createApp();
