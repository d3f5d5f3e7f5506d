// The package's typings as its users compile against them: the declarations `npm run build`
// makes (scripts/build.cjs --types-only, into a scratch package), resolved through package.json's
// "exports" by tsc, from a CommonJS TypeScript file (`import Lock = require(...)`), a
// type-checked CommonJS JavaScript file (`const { LockManager } = require(...)`) and an ES module,
// under moduleResolution node16 and bundler. The CommonJS typings must match what `require()`
// returns at run time (lib/main.cjs): the callable `Lock` with every named export attached.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.join(__dirname, '..', '..');
const tsc = require.resolve('typescript/bin/tsc');

/** Runs a node script to its end; resolves its exit code and output. */
function node(args: string[], cwd: string) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 50_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error.code as number | undefined) ?? -1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** The names lib/index.ts exports, each with whether it is a type only. */
function exportedNames(): { name: string; typeOnly: boolean }[] {
  const file = path.join(root, 'lib', 'index.ts');
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  const names: { name: string; typeOnly: boolean }[] = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.exportClause) continue;
    if (!ts.isNamedExports(statement.exportClause)) continue;
    for (const element of statement.exportClause.elements) {
      names.push({ name: element.name.text, typeOnly: statement.isTypeOnly || element.isTypeOnly });
    }
  }
  return names;
}

/** The files of a consumer project, by name. */
function consumerFiles(): Record<string, string> {
  const names = exportedNames();
  const values = names.filter((n) => !n.typeOnly).map((n) => `Lock.${n.name}`);
  const types = names.filter((n) => n.typeOnly).map((n) => n.name);
  return {
    'package.json': JSON.stringify({ private: true, type: 'commonjs' }),
    // What 0.0.1's users write in TypeScript: the callable export, and the named ones beside it.
    'cjs-import-require.cts': `
import Lock = require('mongoose-distributed-lock');
import { LockManager, strategies, type CompatLockOptions, type LockCallback } from 'mongoose-distributed-lock';

const options: Lock.CompatLockOptions & CompatLockOptions = { timeout: 1000, pollInterval: '100ms' };
const lock: Lock.CompatLock = Lock('x', options);
const done: LockCallback<boolean> = (error, held) => void [error?.message, held === true];
lock.pollAcquire(done);
lock.acquire().then((held: boolean) => held);
const manager: Lock.LockManager = new Lock.LockManager({ ttl: '30s' });
const same: LockManager = manager;
Lock.default('y').forceAcquire((error) => error instanceof Lock.LockError && error.code === Lock.LockErrorCode.Connection);
strategies.bounded({ interval: 100, attempts: 3 });
void same;

// @ts-expect-error: a name is a string
Lock(42);
// @ts-expect-error: no such export
void Lock.NoSuchExport;
// @ts-expect-error: a lock has no such method
lock.acquireSoon();
`,
    // Every export of lib/index.ts, on the CommonJS export too (the namespace kept in step by hand).
    'cjs-every-export.cts': `
import Lock = require('mongoose-distributed-lock');
import type { ${types.join(', ')} } from 'mongoose-distributed-lock';

type IsAny<T> = 0 extends 1 & T ? true : false;
/** Fails to compile for a value typed any (a name the declaration file could not resolve). */
declare function known<T>(value: T, ...notAny: IsAny<T> extends true ? [never] : []): void;
${values.map((value) => `known(${value});`).join('\n')}
export type Types = [${types.map((type) => (type === 'LockCallback' ? `${type}<boolean>` : type)).join(', ')}];
`,
    // A CommonJS program, type-checked as JavaScript: require() is typed from the same declarations.
    'cjs-require.cjs': `// @ts-check
'use strict';
const { LockManager, LockTimeoutError } = require('mongoose-distributed-lock');
const Lock = require('mongoose-distributed-lock');

const lock = Lock('x', { timeout: 1000 });
lock.pollAcquire(function (err, lockAcquired) {
  if (err instanceof LockTimeoutError) return;
  /** @type {boolean | undefined} */
  const held = lockAcquired;
  void held;
});
new LockManager({ ttl: '30s' }).lease('x');
new Lock.LockManager();
// @ts-expect-error: a name is a string
Lock(42);
// @ts-expect-error: options.timeout is a duration
Lock('x', { timeout: true });
`,
    'esm-import.mts': `
import Lock, { LockManager, CompatLock, strategies, type CompatLockOptions } from 'mongoose-distributed-lock';

const options: CompatLockOptions = { timeout: '1s' };
const lock: CompatLock = Lock('x', options);
lock.acquire().then((held: boolean) => held);
new LockManager().lease('x', { ttl: 1000 });
strategies.backoff({ initial: 10, max: 100 });
// @ts-expect-error: the ES module's default export is the function alone, as at run time
void Lock.LockManager;
// @ts-expect-error: a name is a string
Lock(42);
`,
    // A TypeScript project compiled to CommonJS with bundler resolution (as this repository is).
    'bundler.ts': `
import Lock = require('mongoose-distributed-lock');
import DefaultLock, { LockManager } from 'mongoose-distributed-lock';

Lock('x').release().then((lockTimeouted: boolean) => lockTimeouted);
new Lock.LockManager();
DefaultLock('y');
new LockManager();
// @ts-expect-error: a name is a string
Lock(42);
`,
  };
}

function tsconfig(resolution: 'node16' | 'bundler', files: string[]): string {
  const compilerOptions = {
    ...(resolution === 'node16'
      ? { module: 'node16', moduleResolution: 'node16' }
      : { module: 'commonjs', moduleResolution: 'bundler' }),
    target: 'ES2022',
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    skipLibCheck: true, // mongoose's own types take most of a minute; the package's are checked below
    types: ['node'],
  };
  return JSON.stringify({ compilerOptions, files });
}

let dir: string;

beforeAll(() => {
  // Under the repository's node_modules, so that the built package finds mongoose and @types/node.
  const cache = path.join(root, 'node_modules', '.cache');
  fs.mkdirSync(cache, { recursive: true });
  dir = fs.mkdtempSync(path.join(cache, 'mdl-types-'));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the built typings match the run time: CommonJS gets the callable Lock with every named export, ESM the named exports', async () => {
  const pkg = path.join(dir, 'node_modules', 'mongoose-distributed-lock');
  fs.mkdirSync(pkg, { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  const build = await node(
    [path.join(root, 'scripts', 'build.cjs'), '--out-dir', path.join(pkg, 'dist'), '--types-only'],
    root,
  );
  expect(build).toEqual({ code: 0, output: '' });

  // skipLibCheck skips every .d.ts, the package's too: check the hand-written CommonJS
  // declarations as a source file beside them, so that a name they cannot resolve is an error.
  const entry = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')) as {
    exports: { '.': { require: { types: string } } };
  };
  const cjsTypes = path.join(pkg, entry.exports['.'].require.types);
  expect(fs.existsSync(cjsTypes)).toBe(true);
  fs.copyFileSync(cjsTypes, path.join(path.dirname(cjsTypes), 'main-entry-check.cts'));

  for (const [name, text] of Object.entries(consumerFiles())) fs.writeFileSync(path.join(dir, name), text);
  const node16Files = [
    'cjs-import-require.cts',
    'cjs-every-export.cts',
    'cjs-require.cjs',
    'esm-import.mts',
    path.relative(dir, path.join(path.dirname(cjsTypes), 'main-entry-check.cts')),
  ];
  fs.writeFileSync(path.join(dir, 'tsconfig.node16.json'), tsconfig('node16', node16Files));
  fs.writeFileSync(path.join(dir, 'tsconfig.bundler.json'), tsconfig('bundler', ['bundler.ts']));

  expect(await node([tsc, '-p', 'tsconfig.node16.json'], dir)).toEqual({ code: 0, output: '' });
  expect(await node([tsc, '-p', 'tsconfig.bundler.json'], dir)).toEqual({ code: 0, output: '' });
});
