// The OpenTelemetry instrumentation (lib/opentelemetry.ts) with the SDK's in-memory span exporter
// and a metric reader collected on demand: span names, parents and attributes; each metric's name,
// unit, attributes and values; no more spans or measurements once stopped.
import diagnosticsChannel from 'node:diagnostics_channel';
import fc from 'fast-check';
import { context, SpanStatusCode } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  StackContextManager,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { CHANNELS, TRACING_CHANNELS } from '../../lib/index';
import { instrument, INSTRUMENTATION_NAME } from '../../lib/opentelemetry';
import { VERSION } from '../../lib/version';
import { lockFixture } from '../helpers/locks';
import { nextEvent } from '../helpers/wait';

const locks = lockFixture({ ttl: '3s' });

/** A reader whose collect() the test calls: no timer. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const spans = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });
let stop: () => void;

beforeAll(() => {
  // Synchronous context only: enough for the span active where a call is made.
  context.setGlobalContextManager(new StackContextManager().enable());
});
afterAll(async () => {
  context.disable();
  await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
});
beforeEach(() => {
  spans.reset();
  stop = instrument({ tracerProvider, meterProvider });
});
afterEach(() => stop());

/** The metrics collected now, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === INSTRUMENTATION_NAME)!;
  expect(scope.scope.version).toBe(VERSION);
  return new Map(scope.metrics.map((metric) => [metric.descriptor.name, metric]));
}

/** The data point of `metric` whose attributes include `attributes`. */
function point<T = number>(metrics: Map<string, MetricData>, name: string, attributes: Record<string, unknown>) {
  const metric = metrics.get(name);
  const points = (metric?.dataPoints ?? []) as DataPoint<T>[];
  return points.find((p) => Object.entries(attributes).every(([key, value]) => p.attributes[key] === value));
}

test('acquisitions and withLock make spans, with the lock attributes, nested under the caller', async () => {
  const [a, b] = [await locks.manager({ owner: 'otel-a' }), await locks.manager({ owner: 'otel-b' })];
  const tracer = tracerProvider.getTracer('test');
  let token: number | undefined;
  await tracer.startActiveSpan('caller', (caller) =>
    a.withLock('otel-lock', (lease) => void (token = lease.token), { wait: '5s' }).finally(() => caller.end()),
  );
  const held = await a.acquire('otel-lock');
  await expect(b.acquire('otel-lock', { wait: 100 })).rejects.toThrow(/could not acquire/);
  expect(await b.tryAcquire('otel-lock')).toBeNull();
  await held.release();

  const finished = spans.getFinishedSpans();
  const byName = (name: string) => finished.filter((s) => s.name === name);
  const [caller] = byName('caller');
  const [withLock] = byName('withLock');
  const acquires = byName('acquire lock');
  expect(withLock!.parentSpanContext?.spanId).toBe(caller!.spanContext().spanId);
  expect(acquires[0]!.parentSpanContext?.spanId).toBe(withLock!.spanContext().spanId);
  expect(withLock!.instrumentationScope).toMatchObject({ name: INSTRUMENTATION_NAME, version: VERSION });
  expect(withLock!.attributes).toEqual({
    'lock.name': 'otel-lock',
    'lock.kind': 'lock',
    'lock.owner': 'otel-a',
    'lock.outcome': 'done',
    'lock.fencing_token': token,
  });
  expect(acquires.map((s) => s.attributes)).toEqual([
    {
      'lock.name': 'otel-lock',
      'lock.kind': 'lock',
      'lock.owner': 'otel-a',
      'lock.wait_limit': 5,
      'lock.outcome': 'acquired',
      'lock.fencing_token': token,
      'lock.wait_time': expect.any(Number),
    },
    {
      'lock.name': 'otel-lock',
      'lock.kind': 'lock',
      'lock.owner': 'otel-a',
      'lock.outcome': 'acquired',
      'lock.fencing_token': held.token,
      'lock.wait_time': expect.any(Number),
    },
    {
      'lock.name': 'otel-lock',
      'lock.kind': 'lock',
      'lock.owner': 'otel-b',
      'lock.wait_limit': 0.1,
      'lock.outcome': 'timeout',
      'lock.wait_time': expect.any(Number),
      'error.type': 'timeout',
    },
    {
      'lock.name': 'otel-lock',
      'lock.kind': 'lock',
      'lock.owner': 'otel-b',
      'lock.wait_limit': 0,
      'lock.outcome': 'busy',
      'lock.wait_time': expect.any(Number),
    },
  ]);
  // The timed-out wait lasted at least its limit; it is the one failed span, with the exception.
  expect(acquires[2]!.attributes['lock.wait_time']).toBeGreaterThanOrEqual(0.1);
  expect(acquires.map((s) => s.status.code)).toEqual([
    SpanStatusCode.UNSET,
    SpanStatusCode.UNSET,
    SpanStatusCode.ERROR,
    SpanStatusCode.UNSET,
  ]);
  expect(acquires[2]!.events.map((e) => e.name)).toEqual(['exception']);
  // Spans of the library, not of the driver: no span per MongoDB command.
  expect(new Set(finished.map((s) => s.instrumentationScope.name))).toEqual(new Set(['test', INSTRUMENTATION_NAME]));
});

test('metrics: acquisitions by outcome, wait and hold times in seconds, holds now, losses by reason', async () => {
  const [a, b] = [await locks.manager({ owner: 'm-a' }), await locks.manager({ owner: 'm-b' })];
  const first = await a.acquire('otel-metrics');
  await expect(b.acquire('otel-metrics', { wait: 100 })).rejects.toThrow(/could not acquire/);
  let metrics = await collect();
  const lock = { 'lock.name': 'otel-metrics', 'lock.kind': 'lock' };
  expect(metrics.get('lock.acquisitions')?.descriptor).toMatchObject({ unit: '{acquisition}' });
  expect(point(metrics, 'lock.acquisitions', { ...lock, 'lock.outcome': 'acquired' })?.value).toBe(1);
  expect(point(metrics, 'lock.acquisitions', { ...lock, 'lock.outcome': 'timeout' })?.value).toBe(1);
  expect(metrics.get('lock.wait_time')?.descriptor).toMatchObject({ unit: 's' });
  expect(metrics.get('lock.wait_time')?.dataPointType).toBe(DataPointType.HISTOGRAM);
  const timedOut = point<Histogram>(metrics, 'lock.wait_time', { ...lock, 'lock.outcome': 'timeout' })!.value;
  expect(timedOut.count).toBe(1);
  expect(timedOut.sum).toBeGreaterThanOrEqual(0.1);
  expect(timedOut.sum).toBeLessThan(30);
  expect(point(metrics, 'lock.held', lock)?.value).toBe(1);

  await first.release();
  const second = await a.acquire('otel-metrics');
  await b.forceRelease('otel-metrics');
  await nextEvent(second, 'lost', 20_000);
  metrics = await collect();
  expect(point(metrics, 'lock.held', lock)?.value).toBe(0);
  expect(point(metrics, 'lock.lost', { ...lock, 'lock.lost.reason': 'freed' })?.value).toBe(1);
  const released = point<Histogram>(metrics, 'lock.hold_time', { ...lock, 'lock.hold.end': 'released' })!.value;
  expect(released.count).toBe(1);
  expect(point<Histogram>(metrics, 'lock.hold_time', { ...lock, 'lock.hold.end': 'lost' })!.value.count).toBe(1);
  expect(metrics.get('lock.hold_time')?.descriptor).toMatchObject({ unit: 's' });
  // The watchdog ticked while the second lease was held (its loss was found by a tick).
  const ticks = point<Histogram>(metrics, 'lock.heartbeat.duration', { 'lock.outcome': 'renewed' })!.value;
  expect(ticks.count).toBeGreaterThanOrEqual(1);
  expect(metrics.get('lock.heartbeat.duration')?.descriptor).toMatchObject({ unit: 's' });
});

test('permits, read-write holds, leadership and scheduled runs', async () => {
  const manager = await locks.manager({ owner: 'm-kinds' });
  await manager.semaphore('otel-sem', { limit: 2 }).withPermit(() => 1);
  await manager.readWriteLock('otel-rw').withRead(() => 1);
  await manager.readWriteLock('otel-rw').withWrite(() => 1);
  const election = manager.elect('otel-election', { ttl: 3000, heartbeat: 1000 });
  await nextEvent(election, 'elected');
  let metrics = await collect();
  expect(point(metrics, 'lock.leader', { 'lock.name': 'otel-election' })?.value).toBe(1);
  expect(point(metrics, 'lock.held', { 'lock.name': 'otel-election', 'lock.kind': 'election' })?.value).toBe(1);
  await election.close();
  const tick = new Date('2026-12-01T06:00:00.000Z');
  await manager.runOnce('otel-run', tick, () => 'ok');
  await expect(
    manager.runOnce('otel-run', new Date(tick.getTime() + 1000), () => {
      throw new Error('nope');
    }),
  ).rejects.toThrow('nope');

  metrics = await collect();
  expect(point(metrics, 'lock.leader', { 'lock.name': 'otel-election' })?.value).toBe(0);
  for (const kind of ['permit', 'read', 'write'])
    expect(point(metrics, 'lock.acquisitions', { 'lock.kind': kind, 'lock.outcome': 'acquired' })?.value).toBe(1);
  // A tick's lock counts under its schedule's name, not one name per tick.
  expect(point(metrics, 'lock.acquisitions', { 'lock.name': 'otel-run', 'lock.outcome': 'acquired' })?.value).toBe(2);
  expect(point(metrics, 'lock.runs', { 'lock.name': 'otel-run', 'lock.outcome': 'done' })?.value).toBe(1);
  expect(point(metrics, 'lock.runs', { 'lock.name': 'otel-run', 'lock.outcome': 'failed' })?.value).toBe(1);
  expect(point<Histogram>(metrics, 'lock.run.duration', { 'lock.outcome': 'done' })?.value.count).toBe(1);

  const names = spans.getFinishedSpans().map((s) => s.name);
  expect(names).toEqual(
    expect.arrayContaining([
      'withPermit',
      'acquire permit',
      'withRead',
      'acquire read',
      'withWrite',
      'acquire write',
      'acquire election',
      'scheduled run',
    ]),
  );
  const runs = spans.getFinishedSpans().filter((s) => s.name === 'scheduled run');
  expect(runs.map((s) => [s.attributes['lock.outcome'], s.status.code])).toEqual([
    ['done', SpanStatusCode.UNSET],
    ['failed', SpanStatusCode.ERROR],
  ]);
  expect(runs[0]!.attributes).toEqual({
    'lock.name': 'otel-run',
    'lock.owner': 'm-kinds',
    'lock.fencing_token': expect.any(Number),
    'lock.run.scheduled_at': tick.toISOString(),
    'lock.run.attempt': 1,
    'lock.outcome': 'done',
  });
});

test('metricLockName: leaves the name out of metrics (spans keep it); a bad option is refused', async () => {
  stop();
  stop = instrument({ tracerProvider, meterProvider, metricLockName: () => undefined });
  const manager = await locks.manager();
  await (await manager.acquire('otel-anonymous')).release();
  const metrics = await collect();
  const anonymous = (metrics.get('lock.acquisitions')?.dataPoints ?? []).filter(
    (p) => p.attributes['lock.name'] === undefined,
  );
  expect(anonymous.map((p) => p.attributes)).toEqual([{ 'lock.kind': 'lock', 'lock.outcome': 'acquired' }]);
  expect(spans.getFinishedSpans().at(-1)?.attributes['lock.name']).toBe('otel-anonymous');
  expect(() => instrument({ metricLockName: 'no' as never })).toThrow(
    /instrument\(\) options\.metricLockName must be a function/,
  );
});

test('stop() unsubscribes: no more spans or measurements after it, spans in flight ended; twice is harmless', async () => {
  const [manager, other] = [await locks.manager(), await locks.manager()];
  await (await manager.acquire('otel-stopped')).release();
  const held = await other.acquire('otel-stopped');
  const before = await collect();
  expect(point(before, 'lock.acquisitions', { 'lock.name': 'otel-stopped' })?.value).toBe(2);
  const waiting = manager.acquire('otel-stopped', { wait: '20s' });
  const spanCount = spans.getFinishedSpans().length;
  stop();
  stop();
  // The wait in flight: its span ended by stop(), with no outcome (it had none yet).
  expect(spans.getFinishedSpans()).toHaveLength(spanCount + 1);
  expect(spans.getFinishedSpans().at(-1)!.attributes['lock.outcome']).toBeUndefined();
  await held.release();
  await (await waiting).release();
  await manager.withLock('otel-stopped', () => 1);
  expect(spans.getFinishedSpans()).toHaveLength(spanCount + 1);
  const after = await collect();
  expect(point(after, 'lock.acquisitions', { 'lock.name': 'otel-stopped' })?.value).toBe(2);
  // Nothing is subscribed any more: the library is back to its unobserved path.
  expect(Object.values(CHANNELS).some((name) => diagnosticsChannel.channel(name).hasSubscribers)).toBe(false);
  expect(Object.values(TRACING_CHANNELS).some((name) => diagnosticsChannel.tracingChannel(name).hasSubscribers)).toBe(
    false,
  );
});

test('instrument() options: a value of the wrong type is refused, naming the option; undefined is absent', () => {
  const odd = fc.oneof(
    fc.constantFrom(null, NaN, 0, '', 'x', true, Symbol('s'), 1n, [], () => {}),
    fc.object({ maxDepth: 0 }),
  );
  const keys = ['tracerProvider', 'meterProvider', 'metricLockName'] as const;
  fc.assert(
    fc.property(fc.constantFrom(...keys), odd, (key, value) => {
      const valid = key === 'metricLockName' ? typeof value === 'function' : false;
      const call = () => instrument({ tracerProvider, meterProvider, [key]: value })();
      if (valid) return void call();
      let error: unknown;
      try {
        call();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as TypeError & { code: string }).code).toBe('invalid_argument');
      expect((error as Error).message).toContain(`instrument() options.${key}`);
    }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(null, 0, 'x', true, [], () => {}),
      (options) => {
        expect(() => instrument(options as never)).toThrow(/instrument\(\) options must be an options object/);
      },
    ),
  );
  // undefined behaves as absent: the global providers (no-ops here), the default name.
  instrument({ tracerProvider: undefined, meterProvider: undefined, metricLockName: undefined })();
  instrument(undefined)();
});
