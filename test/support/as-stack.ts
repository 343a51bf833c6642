import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { startDevIdp, type DevIdp, type DevLoginClient } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { captureLogs } from './log-capture.js';
import { IDP_SCOPES, TODO_POLICY } from './stack.js';

/** The key the IdP's tokens are sealed with in the store (authorizationServer.upstream.tokenEncryptionKeyFile). */
export const IDP_TOKEN_KEY = Buffer.alloc(32, 0x5a).toString('base64url');

export const GATEWAY_CLIENT = { clientId: 'mcp-gateway', clientSecret: 'gateway-secret-at-the-idp' };

/** Alice is a todo admin at the IdP; Bob is a plain user. */
export const ACCOUNT_CLAIMS = {
  alice: { groups: ['todo-admins'], email: 'alice@example.test' },
  bob: { groups: ['staff'], email: 'bob@example.test' },
};

export const DEFAULT_GRANTS = `  grants:
    - scopes: [todo:read]
    - scopes: [todo:write, todo:admin]
      when: { claims: { groups: todo-admins } }`;

export interface AsStackOptions {
  /** The whole `authorizationServer:` section's lines after `upstream` (indented by two); default: DEFAULT_GRANTS. */
  readonly asExtra?: string;
  /** Replaces the IdP issuer (an IdP that is down). */
  readonly upstreamIssuer?: string;
  /** The `store:` line; default memory. */
  readonly store?: string;
  /** Top-level lines (publicUrl, …). */
  readonly extraConfig?: string;
  /** Share one IdP, upstream and key file between stacks (replicas). */
  readonly shared?: AsShared;
  readonly gatewayOptions?: GatewayOptions;
  /** registration.allowPrivateNetworks (default true: the tests' documents are on loopback). */
  readonly allowPrivateNetworks?: boolean;
  /** The route's upstream instead of the shared sample server (one that checks a credential, say). */
  readonly upstreamUrl?: string;
  /** More lines of the route (indented by four), e.g. its upstreamAuth. */
  readonly routeExtra?: string;
  /** Lines after the route (indented by two): more routes. */
  readonly moreRoutes?: string;
}

/** What the shared IdP and files are made with. */
export interface AsSharedOptions {
  /** More of the gateway's login client at the IdP: API access tokens, refresh tokens. */
  readonly loginClient?: Partial<Pick<DevLoginClient, 'apiResource' | 'refreshTokens'>>;
  /** More files in the stack's directory, by name. */
  readonly files?: Readonly<Record<string, string>>;
}

/** What replicas share: the IdP, the MCP server behind them, the signing keys. */
export interface AsShared {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  readonly dir: string;
  close(): Promise<void>;
}

export interface AsStack {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  readonly gateway: Gateway;
  readonly mcpUrl: string;
  readonly logs: Record<string, unknown>[];
  readonly dir: string;
  /** Loads the same config with `edit` applied and reloads the gateway with it. */
  reload(edit: (text: string) => string): Promise<void>;
  close(): Promise<void>;
}

/** A dev IdP with the gateway as its confidential login client, the sample MCP server, and a signing key file. */
export async function startAsShared(options: AsSharedOptions = {}): Promise<AsShared> {
  const idp = await startDevIdp({
    scopes: IDP_SCOPES,
    accountClaims: ACCOUNT_CLAIMS,
    loginClients: [{ ...GATEWAY_CLIENT, redirectUris: ['http://127.0.0.1/oauth/callback', 'http://localhost/oauth/callback'], ...options.loginClient }],
  });
  const upstream = await startSampleUpstream({ responseMode: 'json', stateless: false, uriFixtures: false });
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-as-'));
  await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
  await writeFile(join(dir, 'idp-secret'), `${GATEWAY_CLIENT.clientSecret}\n`);
  await writeFile(join(dir, 'idp-token-key'), IDP_TOKEN_KEY);
  for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), text);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  await writeFile(join(dir, 'as-keys.jwks'), JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key-1' }] }));
  return {
    idp,
    upstream,
    dir,
    async close() {
      await upstream.close();
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The gateway as the authorization server in front of the dev IdP, on loopback. */
export async function startAsStack(options: AsStackOptions = {}): Promise<AsStack> {
  const shared = options.shared ?? (await startAsShared());
  const { idp, upstream, dir } = shared;
  const configText = [
    'listen: { host: 127.0.0.1, port: 0 }',
    options.store ?? 'store: { type: memory }',
    options.extraConfig ?? '',
    'authorizationServer:',
    '  signingKeys: { file: as-keys.jwks }',
    '  upstream:',
    `    issuer: ${options.upstreamIssuer ?? idp.issuer}`,
    `    clientId: ${GATEWAY_CLIENT.clientId}`,
    '    clientSecretFile: idp-secret',
    '    scopes: [openid]',
    '    tokenEncryptionKeyFile: idp-token-key',
    `  registration: { allowPrivateNetworks: ${options.allowPrivateNetworks ?? true} }`,
    options.asExtra ?? DEFAULT_GRANTS,
    'routes:',
    '  - name: todo',
    '    path: /mcp',
    `    upstream: ${options.upstreamUrl ?? upstream.url}`,
    '    policy: todo.yaml',
    options.routeExtra ?? '',
    options.moreRoutes ?? '',
  ].join('\n');
  const configFile = join(dir, `gateway-${Math.random().toString(36).slice(2)}.yaml`);
  const config = await parseConfig(configFile, configText);
  const { logger, logs } = captureLogs();
  const gateway = await startGateway(config, { logger, ...options.gatewayOptions });
  return {
    idp,
    upstream,
    gateway,
    mcpUrl: `${gateway.url}/mcp`,
    logs,
    dir,
    async reload(edit) {
      gateway.reload(await parseConfig(configFile, edit(configText)));
    },
    async close() {
      await gateway.close();
      if (!options.shared) await shared.close();
    },
  };
}
