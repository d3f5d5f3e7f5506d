// `npm run mongod` given bad input: one line that names the problem, a non-zero exit, never a hang.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { processes } from '../helpers/processes';

const children = processes();
let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mdlock-launcher-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Runs the launcher to its exit: a hang fails the test at its timeout (and the helper kills it after the file). */
async function launch(args: string[]) {
  const child = children.command(process.execPath, ['scripts/mongod.cjs', '--quiet', ...args]);
  const exit = await child.exited;
  return { exit, stdout: child.stdout(), firstLine: child.stderr().split('\n')[0] };
}

test('a port already in use', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const result = await launch(['--port', `${port}`, '--dbpath', path.join(scratch, 'in-use')]);
    expect(result).toEqual({
      exit: { code: 1, signal: null },
      stdout: '',
      firstLine: `mongod: port ${port} is already in use`,
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a dbpath that cannot be created', async () => {
  const file = path.join(scratch, 'a-file');
  fs.writeFileSync(file, '');
  const result = await launch(['--port', '0', '--dbpath', path.join(file, 'data')]);
  expect(result.exit).toEqual({ code: 1, signal: null });
  expect(result.stdout).toBe('');
  expect(result.firstLine).toMatch(/^mongod: cannot use --dbpath .*a-file\/data: ENOTDIR$/);
});

test.each([
  [['--bogus'], /^mongod: Unknown option '--bogus'/],
  [['--port', 'abc'], /^mongod: --port must be an integer from 0 to 65535, got "abc"$/],
  [['--port', '70000'], /^mongod: --port must be an integer from 0 to 65535, got "70000"$/],
  [['--ttl-monitor', 'soon'], /^mongod: --ttl-monitor must be a positive duration such as 1s or 500, got "soon"$/],
])('usage error %j', async (args, message) => {
  const result = await launch(args);
  expect(result.exit).toEqual({ code: 2, signal: null });
  expect(result.stdout).toBe('');
  expect(result.firstLine).toMatch(message);
});
