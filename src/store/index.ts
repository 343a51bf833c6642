import type { GatewayConfig } from '../config/types.js';
import { MemoryStore } from './memory.js';
import type { KeyValueStore } from './types.js';

/** The store the config names; new kinds (redis) are added here and in the schema's `store`. */
export function createStore(config: GatewayConfig['store']): KeyValueStore {
  switch (config.type) {
    case 'memory':
      return new MemoryStore();
  }
}
