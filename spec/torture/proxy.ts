// A TCP proxy between the workers and the engine that cuts or stalls connections on command,
// as a flaky network or a half-dead load balancer would.
import net from 'node:net';

/** Which way a stalled connection stops forwarding: to the server, to the client, or both. */
export type Direction = 'up' | 'down' | 'both';

/** One client connection and its connection to the server. */
class Link {
  readonly #client: net.Socket;
  readonly #server: net.Socket;
  readonly #held = { up: [] as Buffer[], down: [] as Buffer[] };
  #stalled = { up: false, down: false };

  constructor(client: net.Socket, target: number, onClose: (link: Link) => void) {
    this.#client = client;
    this.#server = net.connect(target, '127.0.0.1');
    const close = () => {
      this.destroy();
      onClose(this);
    };
    for (const socket of [this.#client, this.#server]) socket.on('error', close).on('close', close);
    this.#client.on('data', (chunk: Buffer) => this.#forward('up', chunk));
    this.#server.on('data', (chunk: Buffer) => this.#forward('down', chunk));
  }

  #forward(direction: 'up' | 'down', chunk: Buffer): void {
    if (this.#stalled[direction]) this.#held[direction].push(chunk);
    else (direction === 'up' ? this.#server : this.#client).write(chunk);
  }

  /** Stops forwarding `direction`, holding what arrives. */
  stall(direction: Direction): void {
    this.#stalled = { up: direction !== 'down', down: direction !== 'up' };
  }

  /** Forwards what was held, late, and resumes. */
  deliver(): void {
    this.#stalled = { up: false, down: false };
    for (const direction of ['up', 'down'] as const) {
      for (const chunk of this.#held[direction].splice(0)) this.#forward(direction, chunk);
    }
  }

  destroy(): void {
    this.#client.destroy();
    this.#server.destroy();
  }
}

/** Listens on a port of its own and forwards every connection to `target` on 127.0.0.1. */
export class FaultProxy {
  readonly #target: number;
  readonly #server = net.createServer((client) => this.#accept(client));
  readonly #links = new Set<Link>();

  constructor(target: number) {
    this.#target = target;
  }

  /** Resolves with the port to connect to. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.#links.size;
  }

  #accept(client: net.Socket): void {
    const link = new Link(client, this.#target, (closed) => this.#links.delete(closed));
    this.#links.add(link);
  }

  #some(fraction: number, random: () => number): Link[] {
    return [...this.#links].filter(() => random() < fraction);
  }

  /** Cuts about `fraction` of the open connections; returns how many. */
  cut(fraction: number, random: () => number): number {
    const victims = this.#some(fraction, random);
    for (const link of victims) link.destroy();
    return victims.length;
  }

  /** Stalls about `fraction` of the open connections in `direction`; returns them, for `heal`. */
  stall(fraction: number, direction: Direction, random: () => number): Link[] {
    const victims = this.#some(fraction, random);
    for (const link of victims) link.stall(direction);
    return victims;
  }

  /** Ends a stall: the held bytes are delivered late, or the connections are cut. */
  heal(links: readonly Link[], how: 'deliver' | 'cut'): void {
    for (const link of links) {
      if (how === 'deliver') link.deliver();
      else link.destroy();
    }
  }

  async close(): Promise<void> {
    for (const link of this.#links) link.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
