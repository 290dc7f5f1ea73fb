import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket | null;
  toUpstream: Buffer[];
  toClient: Buffer[];
  drop: () => void;
}

/**
 * A loopback TCP proxy, to break the network between two ends without either end being told:
 * `partition()` stops forwarding both ways (no FIN, no RST: a pulled cable, a NAT that forgot the
 * flow) and holds new connections; `heal()` delivers what was held, as TCP retransmission would,
 * and forwards again. `cut()` destroys every connection (both ends see it end).
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #targetPort: number;
  readonly #pairs = new Set<Pair>();
  #partitioned = false;
  port = 0;

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy.port = (server.address() as AddressInfo).port;
    return proxy;
  }

  #accept(client: Socket): void {
    const pair: Pair = { client, upstream: null, toUpstream: [], toClient: [], drop: () => undefined };
    pair.drop = () => {
      // Through a partition, one end going away is news that cannot reach the other end.
      if (this.#partitioned) return;
      client.destroy();
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
    };
    this.#pairs.add(pair);
    client.on('error', pair.drop);
    client.on('close', pair.drop);
    client.on('data', (d: Buffer) => {
      if (this.#partitioned || !pair.upstream) pair.toUpstream.push(d);
      else pair.upstream.write(d);
    });
    if (!this.#partitioned) this.#connectUpstream(pair);
  }

  #connectUpstream(pair: Pair): void {
    const upstream = connect(this.#targetPort, '127.0.0.1');
    pair.upstream = upstream;
    upstream.on('error', pair.drop);
    upstream.on('close', pair.drop);
    upstream.on('data', (d: Buffer) => {
      if (this.#partitioned) pair.toClient.push(d);
      else pair.client.write(d);
    });
    upstream.once('connect', () => this.#flush(pair));
  }

  #flush(pair: Pair): void {
    if (this.#partitioned) return;
    if (pair.upstream && !pair.upstream.connecting)
      for (const d of pair.toUpstream.splice(0)) pair.upstream.write(d);
    for (const d of pair.toClient.splice(0)) pair.client.write(d);
  }

  /** Silence: nothing is forwarded either way and new connections hang; no end is told. */
  partition(): void {
    this.#partitioned = true;
  }

  /** The network is back: held bytes are delivered, held connections go through. */
  heal(): void {
    this.#partitioned = false;
    for (const pair of this.#pairs) {
      if (!pair.upstream) this.#connectUpstream(pair);
      else this.#flush(pair);
    }
  }

  /** Alias of partition() for one-way stories (a client that silently vanished). */
  blackhole(): void {
    this.partition();
  }

  /** Destroys every forwarded connection (both sides see the TCP connection end). */
  cut(): void {
    this.#partitioned = false;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
