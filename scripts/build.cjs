#!/usr/bin/env node
'use strict';
// `npm run build`: the library as ESM (dist/esm) and CommonJS (dist/cjs), each with .d.ts.
// The CommonJS entry point (dist/cjs/main.cjs, copied from lib/main.cjs) is the callable `Lock` of
// the 0.0.1 API, with every named export attached, so `require('mongoose-distributed-lock')('name',
// options)` keeps working.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const tsc = require.resolve('typescript/bin/tsc');

fs.rmSync(dist, { recursive: true, force: true });
for (const [format, moduleKind] of [
  ['esm', 'esnext'],
  ['cjs', 'commonjs'],
]) {
  const outDir = path.join(dist, format);
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--module', moduleKind, '--outDir', outDir], {
    cwd: root,
    stdio: 'inherit',
  });
  const type = format === 'esm' ? 'module' : 'commonjs';
  fs.writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify({ type })}\n`);
}

fs.copyFileSync(path.join(root, 'lib', 'main.cjs'), path.join(dist, 'cjs', 'main.cjs'));
