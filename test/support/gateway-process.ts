import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The published command line, run as users run it: the built `bin` in a child process. */
export const BIN = resolve('dist/src/bin.js');

/** A gateway running as its own OS process, as a replica runs in a Deployment. */
export interface GatewayProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every JSON log line it wrote, parsed, in order. */
  readonly logs: Record<string, unknown>[];
  /** SIGTERM, then waits for the exit and the last line of output; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Runs the command to completion: its exit code and everything it printed. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `mcp-auth-gateway --config <file>` and resolves once it logs "gateway listening".
 * `nodeFlags` go to node before the script (an --import that injects a fault).
 */
export function spawnGateway(configFile: string, timeoutMs = 10_000, nodeFlags: readonly string[] = []): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...nodeFlags, BIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  // 'close', not 'exit': it comes once stdout is read to its end, so `logs` holds every line.
  const exited = new Promise<number | null>((done) => child.once('close', (code) => (running.delete(child), done(code))));
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg !== 'gateway listening') return;
      clearTimeout(timer);
      resolveStart({
        url: entry.url as string,
        child,
        logs,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited early with ${code}: ${stderr}`));
    });
  });
}
