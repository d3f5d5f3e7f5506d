// The `mongoose-distributed-lock/opentelemetry` entry point as users get it: built by
// `npm run build` (into a scratch package), resolved through package.json's "exports", required
// from CommonJS and imported from an ES module, with its typings; the main entry point never
// loads @opentelemetry/api (an optional peer dependency); the tracer and meter carry
// package.json's version.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');
const tsc = require.resolve('typescript/bin/tsc');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

/** Runs a node script to its end; resolves its exit code and output. */
function node(args: string[], cwd: string) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 100_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error.code as number | undefined) ?? -1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

// A tracer and meter provider that say which name and version they were asked for.
const probe = `
const asked = [];
const tracerProvider = { getTracer: (name, version) => (asked.push(['tracer', name, version]), {}) };
const noop = { add() {}, record() {} };
const meter = { createCounter: () => noop, createUpDownCounter: () => noop, createHistogram: () => noop };
const meterProvider = { getMeter: (name, version) => (asked.push(['meter', name, version]), meter) };
`;

const files: Record<string, string> = {
  'package.json': JSON.stringify({ private: true, type: 'commonjs' }),
  'cjs.cjs': `
require('mongoose-distributed-lock');
const loaded = () => Object.keys(require.cache).some((file) => file.includes('@opentelemetry'));
const before = loaded();
const { instrument } = require('mongoose-distributed-lock/opentelemetry');
${probe}
const stop = instrument({ tracerProvider, meterProvider });
stop();
console.log(JSON.stringify({ before, after: loaded(), asked }));
`,
  'esm.mjs': `
import { instrument } from 'mongoose-distributed-lock/opentelemetry';
${probe}
instrument({ tracerProvider, meterProvider })();
console.log(JSON.stringify({ asked }));
`,
  'types.mts': `
import { instrument, type InstrumentOptions } from 'mongoose-distributed-lock/opentelemetry';
const options: InstrumentOptions = { metricLockName: (name: string) => name.split(':')[0] };
const stop: () => void = instrument(options);
stop();
// @ts-expect-error: metricLockName is a function
instrument({ metricLockName: 'x' });
`,
  'tsconfig.json': JSON.stringify({
    compilerOptions: {
      module: 'node16',
      moduleResolution: 'node16',
      target: 'ES2022',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    },
    files: ['types.mts'],
  }),
};

let dir: string;

beforeAll(() => {
  // Under the repository's node_modules, so that the built package finds mongoose and @opentelemetry/api.
  const cache = path.join(root, 'node_modules', '.cache');
  fs.mkdirSync(cache, { recursive: true });
  dir = fs.mkdtempSync(path.join(cache, 'mdl-otel-'));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the built entry point: required, imported and typed through "exports"; the main one never loads the API', async () => {
  const pkg = path.join(dir, 'node_modules', 'mongoose-distributed-lock');
  fs.mkdirSync(pkg, { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  const build = await node([path.join(root, 'scripts', 'build.cjs'), '--out-dir', path.join(pkg, 'dist')], root);
  expect(build).toEqual({ code: 0, output: '' });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);

  const asked = [
    ['tracer', 'mongoose-distributed-lock', version],
    ['meter', 'mongoose-distributed-lock', version],
  ];
  const cjs = await node(['cjs.cjs'], dir);
  expect(cjs.code).toBe(0);
  expect(JSON.parse(cjs.output)).toEqual({ before: false, after: true, asked });
  const esm = await node(['esm.mjs'], dir);
  expect(esm.code).toBe(0);
  expect(JSON.parse(esm.output)).toEqual({ asked });
  expect(await node([tsc, '-p', 'tsconfig.json'], dir)).toEqual({ code: 0, output: '' });
}, 240_000);
