export { loadConfig, parseConfig } from './config/load.js';
export { ConfigError, type ConfigProblem } from './config/problems.js';
export type { GatewayConfig } from './config/types.js';
export { startGateway, type Gateway, type GatewayOptions } from './gateway.js';
export { Refusal, type RefusalCode } from './errors.js';
