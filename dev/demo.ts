/**
 * `npm run demo`: a development IdP, the sample todo MCP server and the gateway, all on
 * loopback, configured by gateway.example.yaml. Prints how to connect, with ready-made tokens.
 * With `--facade` (`npm run demo:facade`), the gateway is the authorization server instead, in
 * front of an IdP like Entra ID that has no client registration (gateway.facade.example.yaml).
 * For trying the gateway out; never for production (the IdP logs anyone in).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/problems.js';
import { startFacadeDemo } from './demo-facade.js';
import { startDemo } from './demo-stack.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const facade = process.argv.slice(2).includes('--facade');
const configFile = process.env.DEMO_CONFIG ?? join(root, facade ? 'gateway.facade.example.yaml' : 'gateway.example.yaml');

async function main(): Promise<void> {
  const config = await loadConfig(configFile);
  const demo = facade ? await startFacadeDemo(config, { ports: 'configured' }) : await startDemo(config, { ports: 'configured' });
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
