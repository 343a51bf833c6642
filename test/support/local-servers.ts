import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Plain node:http servers a test starts on an ephemeral 127.0.0.1 port, closed with every
 * connection they still hold by `closeLocalServers()` (call it in afterEach).
 */
const servers: Server[] = [];

/** Listens on 127.0.0.1 (port 0) and returns the server's origin. */
export async function listenLocal(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeLocalServers(): Promise<void> {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
}
