import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/problems.js';
import { startGateway } from './gateway.js';

/**
 * The command line (commander: subcommands, help and errors without hand-written parsing).
 * `mcp-auth-gateway --config FILE` and `mcp-auth-gateway serve --config FILE` both serve.
 */
export function buildCli(): Command {
  const program = new Command('mcp-auth-gateway')
    .description('OAuth 2.1 resource-server gateway for MCP servers')
    .showHelpAfterError()
    .exitOverride();

  const configOption = () => new Option('-c, --config <file>', 'gateway config file (YAML)').makeOptionMandatory();

  program
    .command('serve', { isDefault: true })
    .description('serve MCP traffic (the default command)')
    .addOption(configOption())
    .action(async ({ config }: { config: string }) => {
      const gateway = await startGateway(await loadConfig(config));
      // A stray rejection in a dependency must not take every connection down with it.
      process.on('unhandledRejection', (reason) => {
        process.stderr.write(`${JSON.stringify({ level: 50, msg: 'unhandled rejection', err: String((reason as Error)?.stack ?? reason) })}\n`);
      });
      const stop = (signal: string) => {
        process.stderr.write(`mcp-auth-gateway: ${signal}, shutting down\n`);
        void gateway.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  program
    .command('validate')
    .description('check a config and every policy it names; prints all problems as file:line:col')
    .addOption(configOption())
    .action(async ({ config }: { config: string }) => {
      const loaded = await loadConfig(config);
      process.stdout.write(`${config}: OK (${loaded.routes.length} route${loaded.routes.length === 1 ? '' : 's'})\n`);
    });

  return program;
}

/** Runs the CLI; exits the process with the command's status (2 for configuration problems). */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`mcp-auth-gateway: ${error.message}\n`);
      process.exit(2);
    }
    if (isCommanderExit(error)) process.exit(error.exitCode);
    process.stderr.write(`mcp-auth-gateway: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

function isCommanderExit(error: unknown): error is CommanderError {
  return error instanceof CommanderError;
}

