import { Wakeups, grantKey } from '../../lib/wakeups';

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

test('demand is signalled when the first wait goes to sleep and the last one that slept ends; done() twice counts once', async () => {
  const demand: boolean[] = [];
  const wakeups = new Wakeups((watching) => demand.push(watching));
  const first = wakeups.watch('a');
  const second = wakeups.watch('b');
  const quick = wakeups.watch('c'); // acquires at its first attempt: never sleeps, never listens
  expect(wakeups.watching).toBe(0);
  quick.done();
  expect(demand).toEqual([]);
  first.mark();
  second.mark();
  await first.sleep(0, []);
  expect(demand).toEqual([true]);
  await first.sleep(0, []); // a second sleep of the same wait counts once
  await second.sleep(0, []);
  expect(wakeups.watching).toBe(2);
  first.done();
  first.done();
  expect(wakeups.watching).toBe(1);
  second.done();
  expect(demand).toEqual([true, false]);
  await expect(second.sleep(0, [])).resolves.toBeUndefined(); // a sleep after done() asks for nothing
  expect(demand).toEqual([true, false]);
  wakeups.wake('a'); // nobody cares any more: nothing happens, nothing is kept
  expect(wakeups.watching).toBe(0);
});

test('a grant wakes only the wait it is addressed to (by the digest of its lease id) and hands it over once', async () => {
  const wakeups = new Wakeups();
  const granted = wakeups.watch('a');
  const other = wakeups.watch('a');
  granted.expect('lease-1');
  other.expect('lease-2');
  granted.mark();
  other.mark();
  const woken: string[] = [];
  const sleeping = [
    granted.sleep(60_000, []).then(() => woken.push('granted')),
    other.sleep(200, []).then(() => woken.push('other')),
  ];
  const grant = { to: grantKey('lease-1'), token: 7, expiresAt: new Date(0) };
  expect(grant.to).not.toContain('lease-1'); // the lease id itself never travels
  wakeups.wake('a', grant);
  await Promise.all(sleeping);
  expect(woken).toEqual(['granted', 'other']); // other slept its full 200 ms
  expect(granted.granted()).toEqual(grant);
  expect(granted.granted()).toBeUndefined();
  expect(other.granted()).toBeUndefined();
  granted.done();
  other.done();
});

test('a grant for nobody here, or for a lease id a wait no longer expects, is not kept', () => {
  const wakeups = new Wakeups();
  const watch = wakeups.watch('a');
  watch.expect('old');
  watch.expect('new');
  wakeups.wake('a', { to: grantKey('old'), token: 1, expiresAt: new Date(0) });
  wakeups.wake('a', { to: grantKey('someone'), token: 2, expiresAt: new Date(0) });
  expect(watch.granted()).toBeUndefined();
  watch.done();
  wakeups.wake('a', { to: grantKey('new'), token: 3, expiresAt: new Date(0) });
  expect(watch.granted()).toBeUndefined();
});
