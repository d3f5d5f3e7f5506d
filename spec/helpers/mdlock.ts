import { databaseUri } from './mongo';
import { processes, type Child, type Exit } from './processes';

/** What a finished `mdlock` run printed, and how it ended. */
export interface Finished extends Exit {
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from start to exit. */
  readonly took: number;
}

/**
 * Runs the `mdlock` command from the sources (through tsx, as `npm run mdlock` does), in a
 * process of its own, against this test file's database unless MONGODB_URI is given.
 */
export function mdlockRunner(database: () => string) {
  const children = processes();
  const env = () => ({ MONGODB_URI: databaseUri(database()) });
  return {
    /** Starts mdlock; the caller waits for it. */
    start(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Child {
      return children.script('lib/cli/main.ts', args, { env: { ...env(), ...extraEnv } });
    },
    /** Runs mdlock to its end. */
    async run(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Finished> {
      const started = performance.now();
      const child = this.start(args, extraEnv);
      const exit = await child.exited;
      return { ...exit, stdout: child.stdout(), stderr: child.stderr(), took: performance.now() - started };
    },
    kill: children.kill,
    /** A process the command started: killed after the file's tests, should a test fail before it ends. */
    adopt: children.adopt,
  };
}

/** A node one-liner as a command for `mdlock run`, e.g. `node('console.log(1)')`. */
export function node(script: string): string[] {
  return [process.execPath, '-e', script];
}
