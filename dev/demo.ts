/**
 * `npm run demo`: a development IdP, the sample todo MCP server and the gateway, all on
 * loopback, configured by gateway.example.yaml. Prints how to connect, with ready-made tokens.
 * For trying the gateway out; never for production (the IdP logs anyone in).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/problems.js';
import { startDemo } from './demo-stack.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const configFile = process.env.DEMO_CONFIG ?? join(root, 'gateway.example.yaml');

async function main(): Promise<void> {
  const demo = await startDemo(await loadConfig(configFile), { ports: 'configured' });
  process.stdout.write(demo.instructions);
  const stop = async () => {
    await demo.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof ConfigError ? error.message : ((error as Error).stack ?? String(error))}\n`);
  process.exit(1);
});
