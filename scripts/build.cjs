#!/usr/bin/env node
'use strict';
// `npm run build`: the library as ESM (dist/esm) and CommonJS (dist/cjs), each with .d.ts.
// The CommonJS entry point (dist/cjs/main.cjs, copied from lib/main.cjs) is the callable `Lock` of
// the 0.0.1 API, with every named export attached, so `require('mongoose-distributed-lock')('name',
// options)` keeps working; its types (dist/cjs/main.d.cts, copied from lib/main.d.cts) say so.
//
// Every other module is compiled as it is (dist/esm/opentelemetry.js is the `./opentelemetry` entry point).
//
// Options, for the type test (spec/types.spec.ts): `--out-dir <dir>` builds into <dir> instead of
// dist/, and `--types-only` emits only the declaration files (and the entry points).

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.join(__dirname, '..');
const { values } = parseArgs({
  options: { 'out-dir': { type: 'string' }, 'types-only': { type: 'boolean', default: false } },
});
const dist = path.resolve(root, values['out-dir'] ?? 'dist');
const tsc = require.resolve('typescript/bin/tsc');

// The version the OpenTelemetry instrumentation reports (lib/version.ts) is package.json's.
const { version } = require(path.join(root, 'package.json'));
const versionSource = fs.readFileSync(path.join(root, 'lib', 'version.ts'), 'utf8');
if (!versionSource.includes(`export const VERSION = '${version}';`)) {
  console.error(`lib/version.ts does not say package.json's version (${version}): update its VERSION`);
  process.exit(1);
}

fs.rmSync(dist, { recursive: true, force: true });
for (const [format, moduleKind] of [
  ['esm', 'esnext'],
  ['cjs', 'commonjs'],
]) {
  const outDir = path.join(dist, format);
  const args = ['-p', 'tsconfig.build.json', '--module', moduleKind, '--outDir', outDir];
  if (values['types-only'])
    args.push('--emitDeclarationOnly', '--noCheck', '--sourceMap', 'false', '--inlineSources', 'false');
  execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
  const type = format === 'esm' ? 'module' : 'commonjs';
  fs.writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify({ type })}\n`);
}

for (const entry of ['main.cjs', 'main.d.cts']) {
  fs.copyFileSync(path.join(root, 'lib', entry), path.join(dist, 'cjs', entry));
}
