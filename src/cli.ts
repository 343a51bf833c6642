import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config/load.js';
import { ConfigError, formatProblem } from './config/problems.js';
import type { GatewayConfig } from './config/types.js';
import { watchConfig, type ConfigHealth } from './config/watch.js';
import { createLogger, type Logger } from './observability/logger.js';
import { explainRequest, formatExplanation, policyRequestOf, tokenFactsOf } from './policy/explain.js';
import { runPolicyTestFile, testFileFor } from './policy/policy-tests.js';
import { startGateway, type Gateway } from './gateway.js';
import { packageVersion } from './version.js';

/**
 * The command line (commander: subcommands, help and errors without hand-written parsing).
 * `mcp-auth-gateway --config FILE` and `mcp-auth-gateway serve --config FILE` both serve.
 */
export function buildCli(): Command {
  const program = new Command('mcp-auth-gateway')
    .description('OAuth 2.1 resource-server gateway for MCP servers')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  const configOption = () => new Option('-c, --config <file>', 'gateway config file (YAML)').makeOptionMandatory();

  program
    .command('serve', { isDefault: true })
    .description('serve MCP traffic (the default command)')
    .addOption(configOption())
    .action(async ({ config }: { config: string }) => {
      // A stray rejection in a dependency must not take every connection down with it, from the
      // first moment (issuer discovery runs while starting).
      process.on('unhandledRejection', (reason) => {
        process.stderr.write(`${JSON.stringify({ level: 50, msg: 'unhandled rejection', err: String((reason as Error)?.stack ?? reason) })}\n`);
      });
      let fatalLogger: Logger | undefined;
      let gateway: Gateway | undefined;
      // An exception nothing caught leaves state no one can vouch for: it is logged as fatal, the
      // requests still in flight get their access lines (aborted), every line still batched is
      // written (the access and audit lines of the requests just served), and the process exits 1
      // so that its supervisor starts a fresh one.
      process.on('uncaughtException', (error) => {
        if (fatalLogger) fatalLogger.fatal({ event: 'fatal', err: error }, 'uncaught exception: exiting');
        else process.stderr.write(`${JSON.stringify({ level: 60, msg: 'uncaught exception: exiting', err: String(error?.stack ?? error) })}\n`);
        try {
          gateway?.interrupt();
        } catch {
          // A listener failing on the way out: the exit goes ahead all the same.
        }
        // process.exit runs the 'exit' hook that writes every line still batched (log-output.ts).
        process.exit(1);
      });
      const loaded = await loadConfig(config);
      const logger = createLogger(loaded.logLevel);
      fatalLogger = logger;
      const configHealth: ConfigHealth = {};
      // Hot reload: file changes (a ConfigMap's symlink swap included) and SIGHUP; a file with
      // problems is refused and the last good config stays in force. Watching starts first, so
      // nothing written once the gateway serves goes unseen.
      let changedWhileStarting: GatewayConfig | undefined;
      const apply = (next: GatewayConfig) => (gateway ? gateway.reload(next) : (changedWhileStarting = next));
      const watcher = await watchConfig(config, loaded, apply, logger, configHealth);
      gateway = await startGateway(loaded, { logger, configHealth });
      if (changedWhileStarting) gateway.reload(changedWhileStarting);
      process.on('SIGHUP', () => void watcher.reload('SIGHUP'));
      // SIGTERM (Kubernetes, docker stop): a graceful stop, see shutdown.* in the config. A
      // second signal stops at once.
      const stop = (signal: string) => {
        logger.info({ event: 'shutdown', signal }, `${signal}: shutting down`);
        watcher.close();
        const now = () => void gateway!.close().then(() => process.exit(0));
        process.once('SIGTERM', now);
        process.once('SIGINT', now);
        // process.exit runs the 'exit' hook that writes every log line still batched (log-output.ts).
        void gateway!.shutdown().then(() => process.exit(0));
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

  program
    .command('explain')
    .description("show what a route's policy decides for a token's scopes and one request, the reason and the rule")
    .addOption(configOption())
    .requiredOption('-r, --route <name>', 'route name')
    .option('-s, --scopes <scopes>', 'space-separated scopes the token holds', '')
    .option('-t, --tool <name>', 'a tools/call of this tool')
    .option('--args <json>', 'the tools/call arguments, as a JSON object, for rules with arguments')
    .option('--resource <uri>', 'a resources/read of this URI')
    .option('--prompt <name>', 'a prompts/get of this prompt')
    .option('-m, --method <method>', 'any other JSON-RPC method (default tools/list)')
    .option('--claims <file>', "a JSON file of the token's claims, for rules with when.claims")
    .option('--subject <subject>', "the token's subject, for rules with when.subjects")
    .option('--client <client>', "the token's client id, for rules with when.clients")
    .option('--json', 'print the explanation as JSON')
    .action(async (options: {
      config: string; route: string; scopes: string; tool?: string; resource?: string; prompt?: string; method?: string;
      args?: string; claims?: string; subject?: string; client?: string; json?: boolean;
    }) => {
      const targets = [options.tool, options.resource, options.prompt, options.method].filter((t) => t !== undefined);
      if (targets.length > 1) throw new UsageError('give one of --tool, --resource, --prompt and --method');
      const loaded = await loadConfig(options.config);
      const route = loaded.routes.find((r) => r.name === options.route);
      if (!route) throw new UsageError(`no route '${options.route}' in ${options.config} (routes: ${loaded.routes.map((r) => r.name).join(', ')})`);
      const scopes = new Set(options.scopes.split(' ').filter(Boolean));
      const facts = tokenFactsOf({ claims: options.claims === undefined ? undefined : await readClaims(options.claims), subject: options.subject, client: options.client });
      const args = options.args === undefined ? undefined : parseJsonObject(options.args, '--args', 'arguments');
      const target = { tool: options.tool, resource: options.resource, prompt: options.prompt, method: options.method, args };
      const explanation = explainRequest(route.policy, scopes, policyRequestOf(target), facts);
      process.stdout.write(options.json ? `${JSON.stringify(explanation)}\n` : formatExplanation(explanation));
    });

  program
    .command('test')
    .description('run the policy tests (<policy>.test.yaml beside each policy); non-zero exit on a failure')
    .addOption(configOption())
    .action(async ({ config }: { config: string }) => {
      const loaded = await loadConfig(config);
      const policies = new Map(loaded.routes.map((route) => [route.policy.file, route.policy]));
      let passed = 0;
      let failed = 0;
      let files = 0;
      for (const [file, policy] of policies) {
        const result = await runPolicyTestFile(testFileFor(file), policy);
        if (!result) continue;
        files += 1;
        passed += result.passed;
        failed += result.failed + result.problems.length;
        for (const problem of [...result.problems, ...result.failures]) process.stdout.write(`${formatProblem(problem)}\n`);
      }
      if (files === 0) {
        process.stdout.write(`policy tests: none found (looked for ${[...policies.keys()].map(testFileFor).join(', ')})\n`);
        return;
      }
      process.stdout.write(`policy tests: ${passed} passed, ${failed} failed (${files} file${files === 1 ? '' : 's'})\n`);
      if (failed > 0) process.exitCode = 1;
    });

  return program;
}

/** A JSON object given on the command line (`label` names it in the error): exit 2 otherwise. */
function parseJsonObject(text: string, label: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${label}: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${label}: not a JSON object of ${what}`);
  return parsed as Record<string, unknown>;
}

async function readClaims(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--claims ${file}: ${(error as Error).message}`);
  }
  return parseJsonObject(text, `--claims ${file}`, 'claims');
}

/** A command used wrongly: reported in one line, exit 2 like a configuration problem. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Runs the CLI; exits the process with the command's status (2 for configuration problems). */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
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

