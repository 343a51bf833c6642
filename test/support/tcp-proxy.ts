/**
 * A small TCP forwarder on 127.0.0.1 for tests: put it between a client and a server, then
 * silence() it to simulate a network path that goes quiet without closing anything — a NAT
 * entry that expired, a node that crashed behind a load balancer. Neither end sees a FIN or a
 * RST; bytes simply stop arriving, so only the client's own timeouts can notice. Connections
 * made after silence() are forwarded normally (the new path works).
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

const HOST = '127.0.0.1';

export interface TcpProxyTarget {
  readonly host: string;
  readonly port: number;
}

export interface TcpProxy {
  /** The ephemeral port the proxy listens on (on 127.0.0.1). */
  readonly port: number;
  /** e.g. `redis://127.0.0.1:PORT`. */
  url(scheme?: string): string;
  /**
   * Every connection open now stops forwarding, both ways, for good: what either end sends is
   * dropped, and neither end is closed (no FIN/RST, not even when the other end closes).
   */
  silence(): void;
  /** Connections accepted since the start (open or not), so a test can see a reconnect. */
  connections(): number;
  /** Stops listening and destroys every socket, silenced ones included. */
  close(): Promise<void>;
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  silenced: boolean;
}

export async function startTcpProxy(target: TcpProxyTarget): Promise<TcpProxy> {
  const links = new Set<Link>();
  let accepted = 0;
  let closed = false;

  // allowHalfOpen: an 'end' from one side is forwarded as an end() to the other, and a silenced
  // link sends nothing at all, not even the FIN Node would otherwise answer an 'end' with.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    if (closed) return void client.destroy();
    const upstream = createConnection({ host: target.host, port: target.port, allowHalfOpen: true });
    const link: Link = { client, upstream, silenced: false };
    links.add(link);
    for (const socket of [client, upstream]) socket.setNoDelay(true);
    forward(link, client, upstream);
    forward(link, upstream, client);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  function forward(link: Link, from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (link.silenced) return; // dropped on the dead path
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      if (!link.silenced) to.end();
    });
    // 'error' is always followed by 'close' with hadError; the handler keeps it from throwing.
    from.on('error', () => {});
    from.on('close', (hadError: boolean) => {
      if (hadError && !link.silenced) to.destroy();
      if (link.client.destroyed && link.upstream.destroyed) links.delete(link);
    });
  }

  return {
    port,
    url: (scheme = 'redis') => `${scheme}://${HOST}:${port}`,
    silence() {
      for (const link of links) {
        link.silenced = true;
        // Keep reading (and dropping) so neither sender is held up by a pause awaiting 'drain'.
        link.client.resume();
        link.upstream.resume();
      }
    },
    connections: () => accepted,
    async close() {
      closed = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      links.clear();
      await stopped;
    },
  };
}
