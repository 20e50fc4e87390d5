import { createApp } from './app';

export type { AppType } from './app';

/** The Worker: the captioning API over the bundle in assets/model/ (static assets serve the upload page). */
export default createApp();
