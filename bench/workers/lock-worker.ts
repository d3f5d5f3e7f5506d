// A benchmark process holding one manager on its own connection, driven over IPC by bench/run.ts.
//   argv: <uri> <manager options as JSON> [count]
// With `count`, the connection monitors its commands, which 'idle-wait' counts. Without
// it, nothing is added to the path being timed: command monitoring decodes every reply a second
// time (for the event), on the very path of a hand-over.
import { LockManager, type Lease, type LockManagerOptions } from 'mongoose-distributed-lock';
import { commandCounter, connect, now } from '../support';

type Message =
  | { type: 'acquire' | 'wait' | 'release'; name: string }
  | { type: 'loop'; names: number; startAt: number; duration: number }
  | { type: 'idle-wait'; name: string; duration: number };

const [uri, json, count] = process.argv.slice(2) as [string, string, string?];

async function main(): Promise<void> {
  const connection = await connect(uri, { monitorCommands: count === 'count' });
  const commands = commandCounter(connection);
  const manager = new LockManager({ connection, ...(JSON.parse(json) as LockManagerOptions) });
  manager.on('error', (error) => console.error(`bench worker ${process.pid}: ${error.message}`));
  let lease: Lease | undefined;
  const send = (message: object): void => void process.send!(message);

  const handle = async (message: Message): Promise<void> => {
    switch (message.type) {
      case 'acquire':
        lease = await manager.acquire(message.name);
        return send({ type: 'held', at: now() });
      case 'wait': {
        const started = now();
        void manager.acquire(message.name).then((acquired) => {
          lease = acquired;
          send({ type: 'acquired', at: now(), waited: now() - started });
        });
        return send({ type: 'waiting' });
      }
      case 'release':
        await lease!.release();
        return send({ type: 'released', at: now() });
      case 'idle-wait': {
        // Waits on a held lock for `duration` ms and counts what that costs the server.
        const controller = new AbortController();
        commands.reset();
        const started = now();
        const waiting = manager.acquire(message.name, { signal: controller.signal }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, message.duration));
        const sent = commands.total();
        const elapsed = now() - started;
        controller.abort();
        await waiting;
        return send({ type: 'idle', perSecond: sent / (elapsed / 1000) });
      }
      case 'loop': {
        // Acquire and release random names as fast as possible until the end; record the waits.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, message.startAt - now())));
        const end = message.startAt + message.duration;
        const waits: number[] = [];
        let last = message.startAt;
        let maxGap = 0;
        while (now() < end) {
          const started = now();
          const held = await manager.acquire(`contended-${Math.floor(Math.random() * message.names)}`);
          const at = now();
          waits.push(at - started);
          if (at <= end) maxGap = Math.max(maxGap, at - last);
          last = at;
          await held.release();
        }
        maxGap = Math.max(maxGap, end - last);
        return send({ type: 'looped', count: waits.length, waits, maxGap });
      }
    }
  };
  process.on('message', (message: Message) => {
    handle(message).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  });
  const shutdown = () => {
    void manager
      .close()
      .then(() => connection.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('disconnect', shutdown);
  send({ type: 'ready' });
}

void main();
