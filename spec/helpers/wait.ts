/**
 * Resolves with the first truthy value `probe` returns, checking every `interval` ms; rejects
 * after `timeout` ms. For conditions that no event announces (a TTL pass, another process).
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { timeout = 30_000, interval = 20, what = 'condition' }: { timeout?: number; interval?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const started = performance.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() - started > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

type Once = (event: string, listener: (...args: unknown[]) => void) => unknown;

/** Resolves with the arguments of the next `event` of any emitter; rejects after `timeout` ms. */
export function nextEvent<A extends unknown[] = unknown[]>(
  emitter: { once: unknown },
  event: string,
  timeout = 30_000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${timeout} ms`)), timeout);
    (emitter.once as Once).call(emitter, event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as A);
    });
  });
}
