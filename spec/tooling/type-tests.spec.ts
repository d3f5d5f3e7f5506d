// Runs the type tests of spec/types: tsc compiles them (never runs them) with their own tsconfig,
// which extends the root one. They check the event maps and public signatures as users see them;
// a `// @ts-expect-error` line there is a call that must not compile.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');
const tsc = require.resolve('typescript/bin/tsc');

/** Compiles a project with tsc --noEmit; resolves its exit code and output. */
function compile(project: string) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [tsc, '--noEmit', '-p', project],
      { cwd: root, timeout: 110_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error.code as number | undefined) ?? -1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

test('the type tests compile: event maps and signatures as declared, and every wrong call refused', async () => {
  const { code, output } = await compile('spec/types/tsconfig.json');
  expect(output).toBe('');
  expect(code).toBe(0);
}, 120_000);

test('a type test that does not hold fails the compilation: a wrong type, and a wrong call that compiles', async () => {
  fs.mkdirSync(path.join(root, '.scratch'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, '.scratch', 'type-tests-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../spec/types/tsconfig.json', include: ['./*.ts'] }),
    );
    fs.writeFileSync(
      path.join(dir, 'broken.ts'),
      [
        "import type { Lease, LostReason } from 'mongoose-distributed-lock';",
        "import { assert, type Equal } from '../../spec/types/assert';",
        'declare const lease: Lease;',
        "lease.on('lost', (_error) => assert<Equal<typeof _error.reason, string>>());",
        '// @ts-expect-error -- this call compiles, so the directive is unused',
        "lease.on('lost', (_error) => _error.reason satisfies LostReason);",
        '',
      ].join('\n'),
    );
    const { code, output } = await compile(path.relative(root, path.join(dir, 'tsconfig.json')));
    expect(code).not.toBe(0);
    expect(output).toMatch(/broken\.ts\(4,\d+\): error TS2344/); // Equal<LostReason, string> is false
    expect(output).toMatch(/broken\.ts\(5,\d+\): error TS2578/); // unused '@ts-expect-error'
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
