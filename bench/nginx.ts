import { constants } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { spawnCommand, type Child } from './children.js';

/** Row (e): nginx as a plain reverse proxy, when the machine has it. Never installed by the benchmark. */
export type NginxLookup = { readonly found: true; readonly path: string } | { readonly found: false; readonly reason: string };

/** Like `which nginx`, plus /usr/sbin (Debian's nginx lives there, often off a user's PATH). */
export async function findNginx(env = process.env): Promise<NginxLookup> {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nginx');
    try {
      await access(candidate, constants.X_OK);
      return { found: true, path: candidate };
    } catch {
      // not here
    }
  }
  return { found: false, reason: 'nginx is not installed (no nginx on PATH, /usr/sbin or /usr/local/sbin)' };
}

/**
 * One nginx process (master_process off: a single worker does everything, so its CPU is one
 * pid's), keep-alive to the upstream as the gateway and the bare proxy have, no buffering (SSE
 * answers are relayed event by event), no access log (the gateway logs nothing per request either).
 */
export async function startNginx(nginx: string, dir: string, port: number, upstreamOrigin: string): Promise<Child> {
  const prefix = join(dir, 'nginx');
  await mkdir(join(prefix, 'temp'), { recursive: true });
  const upstream = new URL(upstreamOrigin);
  const temp = (name: string) => `${name}_temp_path ${join(prefix, 'temp', name)};`;
  const config = `daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 16384; }
http {
  access_log off;
  ${temp('client_body')}
  ${temp('proxy')}
  ${temp('fastcgi')}
  ${temp('uwsgi')}
  ${temp('scgi')}
  upstream mcp_upstream {
    server ${upstream.hostname}:${upstream.port};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mcp_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`;
  const file = join(prefix, 'nginx.conf');
  await writeFile(file, config);
  const child = spawnCommand('nginx', nginx, ['-p', prefix, '-c', file]);
  await waitForPort(child, port);
  return child;
}

async function waitForPort(child: Child, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) break;
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await child.stop();
  throw new Error(`nginx did not start listening on ${port}:\n${child.output.join('\n')}`);
}
