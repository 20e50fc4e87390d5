// Entry point of worker threads that run TypeScript. Node 20 does not hand tsx's loader (from the
// parent's `--import`, or vitest's transform) to worker threads, so register tsx here and then
// load the .ts module named in workerData.entry (a file: URL).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
