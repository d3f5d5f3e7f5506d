import { Wakeups } from '../../lib/wakeups';

test('a wake-up seen while an attempt was in flight ends the next sleep at once', async () => {
  const wakeups = new Wakeups();
  const watch = wakeups.watch('a');
  watch.mark(); // attempt sent
  wakeups.wake('a'); // released before the "busy" answer came back
  const started = performance.now();
  await watch.sleep(60_000, []);
  expect(performance.now() - started).toBeLessThan(1000);
  watch.done();
});

test('a sleep ends on wake(name), and only for that name', async () => {
  const wakeups = new Wakeups();
  const a = wakeups.watch('a');
  const b = wakeups.watch('b');
  a.mark();
  b.mark();
  const woken: string[] = [];
  const sleeping = [a.sleep(60_000, []).then(() => woken.push('a')), b.sleep(100, []).then(() => woken.push('b'))];
  wakeups.wake('a');
  await Promise.all(sleeping);
  expect(woken).toEqual(['a', 'b']); // b slept its full 100 ms
  a.done();
  b.done();
});

test('an abort ends the sleep with the abort reason', async () => {
  const wakeups = new Wakeups();
  const watch = wakeups.watch('a');
  watch.mark();
  const controller = new AbortController();
  const sleeping = watch.sleep(60_000, [undefined, controller.signal]);
  const reason = new Error('stop');
  controller.abort(reason);
  await expect(sleeping).rejects.toBe(reason);
  await expect(watch.sleep(10, [AbortSignal.abort('already')])).rejects.toBe('already');
  watch.done();
});

test('demand is signalled when the first wait starts and the last one ends; done() twice counts once', () => {
  const demand: boolean[] = [];
  const wakeups = new Wakeups((watching) => demand.push(watching));
  const first = wakeups.watch('a');
  const second = wakeups.watch('b');
  expect(wakeups.watching).toBe(2);
  first.done();
  first.done();
  expect(wakeups.watching).toBe(1);
  second.done();
  expect(demand).toEqual([true, false]);
  wakeups.wake('a'); // nobody cares any more: nothing happens, nothing is kept
  expect(wakeups.watching).toBe(0);
});
