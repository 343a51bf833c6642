import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';

export interface StoreGatewayOptions {
  /** Holds `todo.yaml` (the route's policy) and any files the store section names. */
  readonly dir: string;
  readonly issuer: string;
  readonly upstreamUrl: string;
  /** The `store:` section, as YAML flow text. */
  readonly storeYaml: string;
}

/** An in-process gateway with one /mcp route and the given store, for tests about the store's settings. */
export async function startGatewayWithStore(options: StoreGatewayOptions): Promise<Gateway> {
  const config = await parseConfig(
    join(options.dir, 'gateway.yaml'),
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `store: ${options.storeYaml}`,
      'issuers:',
      `  - issuer: ${options.issuer}`,
      'routes:',
      `  - { name: todo, path: /mcp, upstream: "${options.upstreamUrl}", policy: todo.yaml }`,
    ].join('\n'),
  );
  return startGateway(config, { logger: createLogger('silent') });
}
