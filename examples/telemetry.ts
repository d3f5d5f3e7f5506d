// Traces and metrics of a few lock acquisitions through OpenTelemetry: spans printed on the
// console, metrics served to Prometheus at http://localhost:9464/metrics (METRICS_PORT to change
// the port, 0 for any free one). Serves until Ctrl-C, then closes everything and exits.
//
//   npm run example:telemetry
//   curl -s localhost:9464/metrics | grep lock_
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import mongoose from 'mongoose';
import { ConsoleSpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { LockManager } from 'mongoose-distributed-lock';
import { instrument } from 'mongoose-distributed-lock/opentelemetry';
import { withDatabase } from './support/database';

void withDatabase(async (uri) => {
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() })],
  });
  // The exporter's handler on a server of our own: so that the port can be 0 and the URL printed.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [prometheus] });
  const stop = instrument({ tracerProvider, meterProvider });
  const server = http.createServer((request, response) => {
    if (request.url === '/metrics') prometheus.getMetricsRequestHandler(request, response);
    else response.writeHead(404).end();
  });
  server.listen(Number(process.env.METRICS_PORT ?? 9464));
  await once(server, 'listening');

  const connection = await mongoose
    .createConnection(uri, { dbName: process.env.EXAMPLE_DB ?? 'telemetry' })
    .asPromise();
  const [alice, bob] = [
    new LockManager({ connection, owner: 'alice', ttl: '10s' }),
    new LockManager({ connection, owner: 'bob', ttl: '10s' }),
  ];
  try {
    for (let run = 1; run <= 3; run++) {
      await alice.withLock('nightly-report', (lease) => console.log(`alice runs the report (token ${lease.token})`));
    }
    const held = await alice.acquire('nightly-report');
    console.log(`bob tries once: ${(await bob.tryAcquire('nightly-report')) ? 'got it' : 'busy'}`);
    await bob
      .acquire('nightly-report', { wait: 200 })
      .catch((error: Error) => console.log(`bob gave up: ${error.message}`));
    await held.release();

    const { port } = server.address() as AddressInfo;
    console.log(`metrics at http://localhost:${port}/metrics (Ctrl-C to stop)`);
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  } finally {
    stop();
    server.close();
    await Promise.all([alice.close(), bob.close()]);
    await connection.close();
    await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
    console.log('stopped');
  }
});
