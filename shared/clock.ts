/** Milliseconds from a monotonic clock where there is one (browsers, workerd, Node), else Date. */
export const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());
