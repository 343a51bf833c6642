import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { KeyValueStore } from '../../src/store/types.js';

export interface SingleRouteGatewayOptions {
  /** Holds `todo.yaml` (the route's policy) and any files the config names. */
  readonly dir: string;
  /** The one issuer, as a YAML flow mapping: `{ issuer: "…", dpop: required }`. */
  readonly issuerYaml: string;
  readonly upstreamUrl: string;
  /** The `store:` section, as YAML flow text; default memory. */
  readonly storeYaml?: string;
  /** `publicUrl:` (default: none, so the address the gateway listens on). */
  readonly publicUrl?: string;
  /** A store made by the test (e.g. a memory store with small caps), used instead of the section's. */
  readonly store?: KeyValueStore;
  /** Default: silent. */
  readonly logger?: Logger;
}

/** An in-process gateway with one /mcp route, for tests about one issuer's or one store's settings. */
export async function startSingleRouteGateway(options: SingleRouteGatewayOptions): Promise<Gateway> {
  const config = await parseConfig(
    join(options.dir, 'gateway.yaml'),
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      ...(options.publicUrl ? [`publicUrl: "${options.publicUrl}"`] : []),
      ...(options.storeYaml ? [`store: ${options.storeYaml}`] : []),
      'issuers:',
      `  - ${options.issuerYaml}`,
      'routes:',
      `  - { name: todo, path: /mcp, upstream: "${options.upstreamUrl}", policy: todo.yaml }`,
    ].join('\n'),
  );
  return startGateway(config, { logger: options.logger ?? createLogger('silent'), ...(options.store ? { store: options.store } : {}) });
}
