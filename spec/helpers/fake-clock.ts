import type { Clock } from '../../lib/clock';

/** A clock whose time moves only when a test says so; its timers fire in order of due time. */
export class FakeClock implements Clock {
  time = 0;
  #timers: { at: number; callback: () => void; id: number }[] = [];
  #ids = 0;
  now = () => this.time;
  setTimeout = (callback: () => void, delay: number) => {
    const timer = { at: this.time + delay, callback, id: ++this.#ids };
    this.#timers.push(timer);
    return timer;
  };
  clearTimeout = (timer: unknown) => {
    this.#timers = this.#timers.filter((t) => t !== timer);
  };

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Fires the earliest timer due by `until` (any, if not given), moving time to it (never back).
   * Returns false if there is none.
   */
  fireNext(until = Infinity): boolean {
    const next = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (!next) return false;
    this.#timers = this.#timers.filter((t) => t !== next);
    this.time = Math.max(this.time, next.at);
    next.callback();
    return true;
  }
}
