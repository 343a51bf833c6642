import type { StoreConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { MemoryStore } from './memory.js';
import type { KeyValueStore } from './types.js';

export interface OpenedStore {
  readonly store: KeyValueStore;
  /** Waits for the first connection, at most the connect timeout; true when the store answers. */
  readonly waitUntilReady: () => Promise<boolean>;
}

/**
 * The store the config names: memory for one instance, Redis for replicas that act as one. The
 * Redis client is loaded only when configured (about 10 MiB of resident code otherwise unused).
 */
export async function openStore(config: StoreConfig, logger: Logger): Promise<OpenedStore> {
  switch (config.type) {
    case 'memory': {
      const store = new MemoryStore();
      return { store, waitUntilReady: async () => true };
    }
    case 'redis': {
      const { RedisStore } = await import('./redis.js');
      const store = new RedisStore(config, logger);
      return { store, waitUntilReady: () => store.waitUntilReady(config.connectTimeoutMs) };
    }
  }
}
