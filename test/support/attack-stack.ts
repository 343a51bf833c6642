/**
 * The stack for test/e2e/jwt-attacks.test.ts: startStack (stack.ts) trusts exactly one issuer,
 * and the attack suite needs several, so this builds the same thing (real IdPs, real SDK
 * upstream, the gateway in process) with a list of issuers:
 *
 * - `idp`: a real RS256 dev IdP, the route's issuer, keys found by discovery, default clock
 *   tolerance (30 s);
 * - `ecIdp`: a second real dev IdP signing ES256, also trusted (cross-issuer key confusion,
 *   CVE-2022-21449);
 * - whatever `extraIssuers` adds, typically with a `jwksUri` on `keyServer`: a plain HTTP server
 *   on 127.0.0.1 whose answers each test sets, and which counts every request it receives.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { IDP_SCOPES, TODO_POLICY } from './stack.js';
import { captureLogs } from './log-capture.js';

export type KeyServerHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** One request the key server received. */
export interface KeyServerHit {
  readonly path: string;
  /** Date.now() when it arrived. */
  readonly at: number;
}

/**
 * An HTTP server standing in for an IdP's JWKS endpoint (or an attacker's `jku`/`x5u` URL):
 * each path answers as its handler says; an unknown path answers 404. Every request is
 * recorded, so a test can count fetches or prove that none happened.
 */
export class KeyServer {
  private readonly handlers = new Map<string, KeyServerHandler>();
  private readonly received: KeyServerHit[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<KeyServer> {
    let self: KeyServer | undefined;
    const server = createServer((req, res) => self!.answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new KeyServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** Answers `path` (no query) with `handler` from now on. */
  on(path: string, handler: KeyServerHandler): void {
    this.handlers.set(path, handler);
  }

  /** Answers `path` with `body` as JSON (200). */
  json(path: string, body: unknown): void {
    const text = JSON.stringify(body);
    this.on(path, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    });
  }

  /** The requests received on `path` (every path when omitted), oldest first. */
  hits(path?: string): KeyServerHit[] {
    return this.received.filter((hit) => path === undefined || hit.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections(); // hanging answers included
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', this.url).pathname;
    this.received.push({ path, at: Date.now() });
    const handler = this.handlers.get(path);
    if (handler) {
      handler(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
}

export interface AttackStackServers {
  readonly idp: DevIdp;
  readonly ecIdp: DevIdp;
  readonly keyServer: KeyServer;
}

export interface AttackStackOptions {
  /**
   * More entries for the config's `issuers:` list (objects as in the YAML), after `idp` and
   * `ecIdp`. Called before the gateway starts, so it may also install `keyServer` handlers:
   * the gateway fetches every issuer's keys once at startup.
   */
  readonly extraIssuers?: (servers: AttackStackServers) => Record<string, unknown>[] | Promise<Record<string, unknown>[]>;
  /** `timeouts.issuerDiscovery`, which also bounds each JWKS fetch. Default 1s. */
  readonly issuerDiscoveryTimeout?: string;
}

export interface AttackStack extends AttackStackServers {
  readonly upstream: SampleUpstream;
  readonly gateway: Gateway;
  /** The MCP endpoint: gateway URL + /mcp; the resource (audience) tokens must name. */
  readonly mcpUrl: string;
  /** Every log entry the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startAttackStack(options: AttackStackOptions = {}): Promise<AttackStack> {
  const [idp, ecIdp, keyServer, upstream] = await Promise.all([
    startDevIdp({ scopes: IDP_SCOPES, signingAlg: 'RS256' }),
    startDevIdp({ scopes: IDP_SCOPES, signingAlg: 'ES256' }),
    KeyServer.start(),
    startSampleUpstream({ responseMode: 'json', stateless: false }),
  ]);
  const servers = { idp, ecIdp, keyServer };
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-attacks-'));
  await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
  // JSON is YAML: the config is built as an object, so issuer entries need no YAML quoting.
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    store: { type: 'memory' },
    timeouts: { upstreamResponse: '2s', issuerDiscovery: options.issuerDiscoveryTimeout ?? '1s' },
    issuers: [{ issuer: idp.issuer }, { issuer: ecIdp.issuer }, ...((await options.extraIssuers?.(servers)) ?? [])],
    routes: [{ name: 'todo', path: '/mcp', upstream: upstream.url, policy: 'todo.yaml' }],
  };
  const { logger, logs } = captureLogs();
  const gateway = await startGateway(await parseConfig(join(dir, 'gateway.yaml'), JSON.stringify(config, null, 2)), {
    logger,
  });
  return {
    ...servers,
    upstream,
    gateway,
    mcpUrl: `${gateway.url}/mcp`,
    logs,
    async close() {
      await gateway.close();
      await Promise.all([upstream.close(), idp.close(), ecIdp.close(), keyServer.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A throwaway attacker key and a self-signed certificate for it (CN=attacker.invalid), made
 * once with `openssl req -x509 -newkey rsa:2048 -nodes` for the `x5c` header case: Node cannot
 * issue certificates, and the case needs a real one whose key signed the token. Trusted nowhere.
 */
export const ATTACKER_CERT_KEY_PKCS8 = `-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCpldzxP+rGYCjG
5MO/10uJgjrlAliXrLsD1yeA2e86BloK0Ecyx24GmqpTyJWGeYj9zqBvsVNrug/8
/JyfY0QVksLWLacAUJz6VV1hLIHSmN2NT9qznZua4GMi3LG6TtUXeuDBFGt+V2tf
FIWLeUilSPP8kvo1xJZUEazXFtHy6gw+7qUaut+Kg7pV/CRFiwYpkZ30coBkcGQa
nsn8oBdRCLcRN9R3ZWwgOsMaZag47eTC0lCWyQXGCG5XQtOiWsHap8ZiMQSTfIWz
7SWM5Podf5O6lxEPSWhpS+TfTN+9sjbY3+UnRpNOd02FAbSh1E5CHHRMVPIYfu9x
xOAaYbk5AgMBAAECggEABCYHaJG9viJ0OOpeS6GaQAf8kn8R68yOhIsCKCj2RqSv
YpAvphm8GRZpRO4VUoiQV5VZj7+GWO5glAAmtJz50xVhWNpqZiu/eiQpHSnFl44e
OsXgDCPc+Cc8JNCojeEK3dC0S32vnZpJBR0alIic5JAFPPg0/ZuWEFwtO3oVnH2l
50PnoPSgX5KDdV9FoyVSug42CuFUiv/dkhsvvPdtuBMd/WYqw1e6ERZiPdh6KMDf
iEjs7aSPCfQZLtcH9VqwanG5UocLAzMObJLX5rRp4puxocnZ/g0VX0sNKN6Ttb99
IwlJxmFtVJ6+LfVmkLP2EuA19+/O7QBwv3fWK8h7gQKBgQDZQB0QR2BRh03+EPv+
vcWun85X07QN+6tCqyR0GmwdRdTMkGlpfvIUOABEvB1elxZtXXD7yRQpVhijbHMS
TjvVcIuFBdJEEO3zY7vV/GYfPx287UDwiEOqcMiJVBe/PAUsGkIxVUbMEm551IJf
GmNftT76KWie9ftRQKZxgG06uQKBgQDH1VAinj5zZPaFnCj2e3pciRUEekWXPwpx
lBU7b7oi+gso7DiAiJLcwtX1qcNjARCGkXI1B1YedU3NI3yv15mlGdRv+odkROTp
6neEbyX706ayplh9RqwH+jGmW47GCXJMffdhP2wZIDsT40c5L4SjzIsTes9JB5Ln
Nx8KYVcygQKBgQCUO8/Y5KrO1kCcI6Cdz4TLwtR7TsMja14OrlHAOqscSiKJtduH
FQw+SXu9apGrkfHGi6Rk2G2+SrWjBIN7sQ/YceNwz2kJ8nc5xApNVtujZGB5IXVW
6dMpv6zFLzDI1j49OmmB2crlwYnJ7PtLwuidTED9VjXBiNuDNFadSWC+WQKBgEaK
38oIsKUNrBTIZpF0T2KhJaE6BJz6rRYhH0mnDD9So2Pj16JQFAAIa31YW1f0xT+r
0nQzzcvcvwU+lMKCSoPE1YBeITNdOq30jhJbJj56nasNG8nFi+8Y/DPsuD7ikM29
3fkfaWqJPTGtFrRyONGV4DaVMN1n5gznIXcJm72BAoGBAKkmNzcdpWWNPRH0troE
thzOrd1ZrL6G8hy9HIz46CxK7tCSDD8PB5nbNuVoxg0J0lWYKaS/hMrXNawqV+PJ
fnN9TJzKBHa3buuEvgprsJelgPdEh5pReKRi9aMF5QH3AkLL2WfzWLOXma+zv6PH
TIV2L9YrKl+bxf2jp+XZMEEE
-----END PRIVATE KEY-----`;

/** The certificate above, DER as standard base64 (the form `x5c` carries, RFC 7515 §4.1.6). */
export const ATTACKER_CERT_DER_BASE64 = 'MIIDGTCCAgGgAwIBAgIUQ0uOpeWZxvsKPiCnUkGBOoWvrWIwDQYJKoZIhvcNAQELBQAwGzEZMBcGA1UEAwwQYXR0YWNrZXIuaW52YWxpZDAgFw0yNjExMjMyMzU0MDNaGA8yMTI2MTAzMDIzNTQwM1owGzEZMBcGA1UEAwwQYXR0YWNrZXIuaW52YWxpZDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAKmV3PE/6sZgKMbkw7/XS4mCOuUCWJesuwPXJ4DZ7zoGWgrQRzLHbgaaqlPIlYZ5iP3OoG+xU2u6D/z8nJ9jRBWSwtYtpwBQnPpVXWEsgdKY3Y1P2rOdm5rgYyLcsbpO1Rd64MEUa35Xa18UhYt5SKVI8/yS+jXEllQRrNcW0fLqDD7upRq634qDulX8JEWLBimRnfRygGRwZBqeyfygF1EItxE31HdlbCA6wxplqDjt5MLSUJbJBcYIbldC06JawdqnxmIxBJN8hbPtJYzk+h1/k7qXEQ9JaGlL5N9M372yNtjf5SdGk053TYUBtKHUTkIcdExU8hh+73HE4BphuTkCAwEAAaNTMFEwHQYDVR0OBBYEFInQkDUNsfa6ekOF9D/XBrKWd1SVMB8GA1UdIwQYMBaAFInQkDUNsfa6ekOF9D/XBrKWd1SVMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEBAArxmxvD1vQjjv+sPQ2E+GLWYVdZfCQuSvMbfrM1BhzdC3zcUW6BQltFF542ss45tT+oJ+N16D9NslXi2AZnKrDvlVxAwv5xEYPlgGBcHcxCSYb20el87JhIhICYdKcs05mfjdam9ynqCClxsXbEuYUCbPrK3IrYDB+shZCjLWUX9urumjvAU/5MK4EqtYx+SMnd5a6ENTu87i0zvDU8iIkZgpWAC90Hl0ia/hAKcQasc6POUT1NwLsW4c/46vkh9WHtjeyJGhh09KZZUVLHGTWxXVqkeyI1GIWiCKh+wN6MMf4vPKr30jbwLO6qiY8X8mciMY6hUgM7dKFTSIg2P70=';
