// `mongoose-distributed-lock/opentelemetry`: spans and metrics made from the library's diagnostics
// channels (lib/telemetry.ts), with the OpenTelemetry API only (an optional peer dependency, loaded
// by this entry point alone; the main entry point never imports it). There is no semantic
// convention for locks: the names below follow OpenTelemetry's naming guidance and take the
// database connection pool's metrics (db.client.connection.*) as the model for units and kinds.
// Every name is documented in docs/telemetry.md.
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  context as otelContext,
  metrics,
  trace,
  SpanKind,
  SpanStatusCode,
  ValueType,
  type Attributes,
  type Context,
  type MeterProvider,
  type Span,
  type TracerProvider,
} from '@opentelemetry/api';
import { invalidType } from './errors.js';
import { checkObject } from './options.js';
import {
  CHANNELS,
  TRACING_CHANNELS,
  type AcquireContext,
  type AcquiredMessage,
  type ElectedMessage,
  type HeartbeatMessage,
  type HoldKind,
  type LostMessage,
  type ReleasedMessage,
  type RevokedMessage,
  type RunMessage,
  type TimeoutMessage,
  type WithContext,
} from './telemetry.js';
import { VERSION } from './version.js';

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where the spans go. @defaultValue the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
  /** Where the metrics go. @defaultValue the global meter provider (`metrics.getMeterProvider()`) */
  readonly meterProvider?: MeterProvider;
  /**
   * The `lock.name` attribute of a lock's metrics, or `undefined` to leave it out (for locks whose
   * names are too many to count apart). Spans always carry the name.
   * @defaultValue the name, without the `@<tick>` suffix of a scheduled run's lock (its schedule's name)
   */
  readonly metricLockName?: (name: string) => string | undefined;
}

/** The instrumentation's name: its tracer's and its meter's. */
export const INSTRUMENTATION_NAME = 'mongoose-distributed-lock';

/** A scheduled tick's lock is `<schedule>@<ISO time>`: one per tick, so counted under its schedule. */
const TICK_SUFFIX = /@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function scheduleName(name: string): string {
  return name.replace(TICK_SUFFIX, '');
}

/** `withLock`, `withPermit`, ...: the span name of a withLock-like call, by what it holds. */
const WITH_SPAN_NAMES: Record<HoldKind, string> = {
  lock: 'withLock',
  permit: 'withPermit',
  read: 'withRead',
  write: 'withWrite',
  election: 'withLock', // no such call: an election's lease is only acquired
};

const seconds = (ms: number) => ms / 1000;

/**
 * Bucket boundaries for durations in seconds (the SDK's default ones are made for milliseconds):
 * those of OpenTelemetry's HTTP duration metrics, longer for waits and holds of minutes.
 */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 1800];

/**
 * Turns the library's diagnostics channels into OpenTelemetry spans and metrics, for every
 * manager of this process, until the returned function is called (it unsubscribes; calling it
 * twice is harmless). Spans: `acquire <kind>` per acquisition (its waits included),
 * `withLock`/`withPermit`/`withRead`/`withWrite` per call, and `scheduled run` per run, children of
 * the span active where the call was made. Metrics: see docs/telemetry.md.
 */
export function instrument(options?: InstrumentOptions): () => void {
  const opts = checkObject(options, 'instrument() options') as InstrumentOptions;
  const { tracerProvider = trace.getTracerProvider(), meterProvider = metrics.getMeterProvider() } = opts;
  const metricLockName = opts.metricLockName === undefined ? scheduleName : opts.metricLockName;
  if (typeof metricLockName !== 'function')
    throw invalidType('instrument() options.metricLockName', 'a function', metricLockName);
  if (typeof (tracerProvider as Partial<TracerProvider> | null)?.getTracer !== 'function')
    throw invalidType('instrument() options.tracerProvider', 'a TracerProvider (with getTracer())', tracerProvider);
  if (typeof (meterProvider as Partial<MeterProvider> | null)?.getMeter !== 'function')
    throw invalidType('instrument() options.meterProvider', 'a MeterProvider (with getMeter())', meterProvider);
  const tracer = tracerProvider.getTracer(INSTRUMENTATION_NAME, VERSION);
  const meter = meterProvider.getMeter(INSTRUMENTATION_NAME, VERSION);

  const count = (name: string, unit: string, description: string) =>
    meter.createCounter(name, { description, unit, valueType: ValueType.INT });
  const gauge = (name: string, unit: string, description: string) =>
    meter.createUpDownCounter(name, { description, unit, valueType: ValueType.INT });
  const time = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  const acquisitions = count('lock.acquisitions', '{acquisition}', 'Acquisitions (their waits included), by outcome');
  const waitTime = time('lock.wait_time', 'How long an acquisition took, its waits included');
  const holdTime = time('lock.hold_time', 'How long a hold lasted, from its grant to its release, loss or timeout');
  const held = gauge('lock.held', '{hold}', 'Holds of this process now');
  const lost = count('lock.lost', '{hold}', 'Holds lost, by reason');
  const heartbeat = time(
    'lock.heartbeat.duration',
    "How long a watchdog tick (renewing and reading back a manager's holds) took",
  );
  const leader = gauge('lock.leader', '{leader}', 'Elections this process leads now');
  const runs = count('lock.runs', '{run}', 'Scheduled runs, by outcome');
  const runTime = time('lock.run.duration', 'How long a scheduled run took');

  const holdAttributes = (name: string, kind: HoldKind): Attributes => {
    const metricName = metricLockName(name);
    return metricName === undefined ? { 'lock.kind': kind } : { 'lock.name': metricName, 'lock.kind': kind };
  };

  /** Spans begun and not yet ended: ended by stop(), so that none is left open. */
  const open = new Set<Span>();
  const startSpan = (name: string, attributes: Attributes, parent: Context) => {
    const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
    open.add(span);
    return span;
  };
  const endSpan = (span: Span) => {
    open.delete(span);
    span.end();
  };

  // A with-call's span is the parent of the acquisition inside it: the acquisition's `start` runs
  // within the call's (the tracing channel's bindStore), where this store holds the call's context.
  const within = new AsyncLocalStorage<Context>();
  const parentContext = () => within.getStore() ?? otelContext.active();
  const spans = new WeakMap<object, { span: Span; started: number }>();

  const withChannel = diagnosticsChannel.tracingChannel<unknown, WithContext>(TRACING_CHANNELS.with);
  const withStore = (context: WithContext) => {
    const parent = parentContext();
    const span = startSpan(WITH_SPAN_NAMES[context.kind], spanAttributes(context), parent);
    spans.set(context, { span, started: performance.now() });
    return trace.setSpan(parent, span);
  };
  const withHandlers = {
    start() {},
    end() {},
    asyncStart(context: WithContext) {
      const entry = spans.get(context);
      if (!entry) return;
      entry.span.setAttributes(spanAttributes(context));
      endSpan(entry.span);
    },
    asyncEnd() {},
    error(context: WithContext & { error?: unknown }) {
      const entry = spans.get(context);
      if (entry) failed(entry.span, context.error);
    },
  };
  withChannel.start.bindStore(within, withStore);
  withChannel.subscribe(withHandlers);

  const acquireChannel = diagnosticsChannel.tracingChannel<unknown, AcquireContext>(TRACING_CHANNELS.acquire);
  const acquireHandlers = {
    start(context: AcquireContext) {
      const span = startSpan(`acquire ${context.kind}`, spanAttributes(context), parentContext());
      spans.set(context, { span, started: performance.now() });
    },
    end() {},
    asyncStart(context: AcquireContext) {
      const entry = spans.get(context);
      if (!entry) return;
      const waited = seconds(performance.now() - entry.started);
      const outcome = context.outcome ?? 'error';
      entry.span.setAttributes({ ...spanAttributes(context), 'lock.wait_time': waited });
      endSpan(entry.span);
      const attributes = { ...holdAttributes(context.name, context.kind), 'lock.outcome': outcome };
      acquisitions.add(1, attributes);
      waitTime.record(waited, attributes);
    },
    asyncEnd() {},
    error(context: AcquireContext & { error?: unknown }) {
      const entry = spans.get(context);
      if (entry) failed(entry.span, context.error);
    },
  };
  acquireChannel.subscribe(acquireHandlers);

  // Holds, from their grant to their end: several at once may share a key (a read-write lock's readers).
  const holds = new Map<string, number[]>();
  const holdKey = (message: { name: string; kind: HoldKind; token: number }) =>
    `${message.kind}\u0000${message.name}\u0000${message.token}`;
  const holdEnded = (message: { name: string; kind: HoldKind; token: number }, end: string) => {
    const key = holdKey(message);
    const starts = holds.get(key);
    const started = starts?.shift();
    if (starts?.length === 0) holds.delete(key);
    if (started === undefined) return; // granted before instrument()
    const attributes = holdAttributes(message.name, message.kind);
    held.add(-1, attributes);
    holdTime.record(seconds(performance.now() - started), { ...attributes, 'lock.hold.end': end });
  };

  const runSpans = new Map<string, { span: Span; started: number }>();
  const runKey = (message: RunMessage) => `${message.name}\u0000${message.scheduledAt.getTime()}\u0000${message.token}`;

  const subscribers: { [K in keyof typeof CHANNELS]: (message: never) => void } = {
    acquired(message: AcquiredMessage) {
      const key = holdKey(message);
      const starts = holds.get(key);
      if (starts) starts.push(performance.now());
      else holds.set(key, [performance.now()]);
      held.add(1, holdAttributes(message.name, message.kind));
    },
    released: (message: ReleasedMessage) => holdEnded(message, 'released'),
    lost(message: LostMessage) {
      holdEnded(message, 'lost');
      lost.add(1, { ...holdAttributes(message.name, message.kind), 'lock.lost.reason': message.reason });
    },
    timeout(message: TimeoutMessage) {
      if (message.phase === 'hold') holdEnded({ ...message, token: message.token! }, 'timeout');
    },
    heartbeat(message: HeartbeatMessage) {
      heartbeat.record(seconds(message.durationMs), { 'lock.outcome': message.failed ? 'failed' : 'renewed' });
    },
    elected: (message: ElectedMessage) => leader.add(1, electionAttributes(message.name)),
    revoked: (message: RevokedMessage) => leader.add(-1, electionAttributes(message.name)),
    run(message: RunMessage) {
      const key = runKey(message);
      if (message.phase === 'start') {
        const span = startSpan('scheduled run', runAttributes(message), otelContext.active());
        runSpans.set(key, { span, started: performance.now() });
        return;
      }
      const entry = runSpans.get(key);
      runSpans.delete(key);
      const metricName = metricLockName(message.name);
      const attributes: Attributes = { 'lock.outcome': message.outcome };
      if (metricName !== undefined) attributes['lock.name'] = metricName;
      runs.add(1, attributes);
      runTime.record(seconds(message.durationMs ?? 0), attributes);
      if (!entry) return; // started before instrument()
      entry.span.setAttributes(runAttributes(message));
      if (message.outcome !== 'done') failed(entry.span, message.error);
      endSpan(entry.span);
    },
  };
  const electionAttributes = (name: string): Attributes => {
    const metricName = metricLockName(name);
    return metricName === undefined ? {} : { 'lock.name': metricName };
  };
  const plain = Object.entries(subscribers).map(([key, fn]) => {
    const name = CHANNELS[key as keyof typeof CHANNELS];
    const onMessage = fn as (message: unknown) => void;
    diagnosticsChannel.subscribe(name, onMessage);
    return () => diagnosticsChannel.unsubscribe(name, onMessage);
  });

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    withChannel.start.unbindStore(within);
    withChannel.unsubscribe(withHandlers);
    acquireChannel.unsubscribe(acquireHandlers);
    for (const unsubscribe of plain) unsubscribe();
    for (const span of open) span.end();
    open.clear();
    holds.clear();
    runSpans.clear();
  };
}

/** A span's attributes from a tracing channel's context (the `lock.` namespace). */
function spanAttributes(context: AcquireContext | WithContext): Attributes {
  const attributes: Attributes = { 'lock.name': context.name, 'lock.kind': context.kind, 'lock.owner': context.owner };
  if ('wait' in context && context.wait !== undefined && context.wait !== Infinity)
    attributes['lock.wait_limit'] = seconds(context.wait);
  if (context.outcome !== undefined) attributes['lock.outcome'] = context.outcome;
  if (context.token !== undefined) attributes['lock.fencing_token'] = context.token;
  return attributes;
}

function runAttributes(message: RunMessage): Attributes {
  const attributes: Attributes = {
    'lock.name': message.name,
    'lock.owner': message.owner,
    'lock.fencing_token': message.token,
    'lock.run.scheduled_at': message.scheduledAt.toISOString(),
    'lock.run.attempt': message.attempt,
  };
  if (message.outcome !== undefined) attributes['lock.outcome'] = message.outcome;
  return attributes;
}

/** Marks a span as failed with `error`: its status, `error.type`, and the exception as an event. */
function failed(span: Span, error: unknown): void {
  if (!(error instanceof Error)) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    return;
  }
  const code = (error as { code?: unknown }).code;
  span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
