// What telemetry costs an uncontended acquire() + release(), rounds interleaved in one run: with
// nothing subscribed (the baseline: one `hasSubscribers` check per event), with a no-op subscriber
// on every diagnostics channel (the messages built and published), and with the OpenTelemetry
// instrumentation on (spans to an exporter that drops them, metrics aggregated by the SDK).
import diagnosticsChannel from 'node:diagnostics_channel';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { SimpleSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { CHANNELS, LockManager, TRACING_CHANNELS } from 'mongoose-distributed-lock';
import { instrument } from 'mongoose-distributed-lock/opentelemetry';
import { connect, interleaved, median, timedRow, type Context, type Row } from '../support';

const COLLECTION = 'bench_telemetry';
const TTL = 60_000;

/** Exports nothing: the cost measured is the spans' making, not an exporter's I/O. */
const dropping: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };

/** A reader nobody collects: measurements are aggregated, never exported. */
class IdleReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** A no-op subscriber on every channel; returns what unsubscribes it. */
function subscribeEverything(): () => void {
  const noop = () => {};
  const tracing = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  for (const name of Object.values(CHANNELS)) diagnosticsChannel.subscribe(name, noop);
  for (const name of Object.values(TRACING_CHANNELS)) diagnosticsChannel.tracingChannel(name).subscribe(tracing);
  return () => {
    for (const name of Object.values(CHANNELS)) diagnosticsChannel.unsubscribe(name, noop);
    for (const name of Object.values(TRACING_CHANNELS)) diagnosticsChannel.tracingChannel(name).unsubscribe(tracing);
  };
}

export async function telemetry({ uri, quick }: Context): Promise<Row[]> {
  const connection = await connect(uri);
  const manager = new LockManager({ connection, collection: COLLECTION, ttl: TTL });
  const lease = manager.lease('solo');
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: dropping })] });
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  // Each variant is switched on before its turn and off after it, outside the timed part.
  const switches: Record<string, () => () => void> = {
    off: () => () => {},
    channels: subscribeEverything,
    opentelemetry: () => instrument({ tracerProvider, meterProvider }),
  };
  const cycle = async () => {
    await lease.acquire();
    await lease.release();
  };
  const rounds = quick ? 300 : 3000;
  let times: Record<string, number[]>;
  try {
    times = await interleaved({ off: cycle, channels: cycle, opentelemetry: cycle }, rounds, {
      around: (name) => switches[name]!(),
    });
  } finally {
    await manager.close();
    await connection.close();
    await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
  }
  const off = { label: 'nothing subscribed', times: times.off! };
  const cost = (name: string) => `${((median(times[name]!) - median(times.off!)) * 1000).toFixed(0)} µs`;
  const scenario = 'uncontended acquire() + release()';
  return [
    timedRow(`${scenario}, a no-op subscriber on every channel`, times.channels!, off, {
      'cost per acquisition (median)': cost('channels'),
      rounds,
    }),
    timedRow(`${scenario}, OpenTelemetry instrumentation on`, times.opentelemetry!, off, {
      'cost per acquisition (median)': cost('opentelemetry'),
      rounds,
    }),
  ];
}
