/** The longest delay a Node.js timer can wait (about 24.8 days). */
export const MAX_TIMER = 2 ** 31 - 1;

/**
 * Races `work` against a timer of `ms`: rejects with `onTimeout()` if the timer fires first.
 * The work still runs to its end; a late failure of it is nobody's to handle. `keepAlive: false`
 * unrefs the timer, for callers whose process may exit while they wait (the CLI); by default the
 * timer keeps the process alive, since someone awaits the result.
 */
export function bounded<T>(
  work: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  { keepAlive = true }: { keepAlive?: boolean } = {},
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.min(Math.max(0, ms), MAX_TIMER));
    if (!keepAlive) timer.unref();
  });
  work.catch(() => {});
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
