import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { IdpTokenVault, type IdpTokenSet } from '../../src/authorization-server/idp-tokens.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { MemoryStore } from '../../src/store/memory.js';
import { IDP_TOKEN_KEY } from './as-stack.js';
import { captureLogs } from './log-capture.js';
import { TODO_POLICY } from './stack.js';

/**
 * The gateway as authorization server in front of an IdP that is not the default dev IdP (the
 * Entra look-alike, the GitHub stand-in): the `upstream:` block is the test's, everything else
 * (signing keys, the sealed-token key, the sample MCP server, a memory store the test can read)
 * is made here. The IdP must be told the gateway's callback (`callbackUrl`) once it listens.
 */
export interface IdpAsStackOptions {
  /** The lines under `authorizationServer.upstream:` (indented by four), secret and key files excluded. */
  readonly upstream: readonly string[];
  /** What the gateway reads from `clientSecretFile`. */
  readonly clientSecret: string;
  /** The `grants:` block, indented by two. */
  readonly grants: string;
  /** Extra CA certificates for metadata documents (GatewayOptions.metadataDocumentCa). */
  readonly metadataDocumentCa?: string;
}

export interface IdpAsStack {
  readonly gateway: Gateway;
  /** The gateway's issuer (its URL). */
  readonly issuer: string;
  readonly mcpUrl: string;
  readonly callbackUrl: string;
  readonly upstream: SampleUpstream;
  readonly store: MemoryStore;
  readonly logs: Record<string, unknown>[];
  /** What the gateway keeps sealed of the IdP's tokens for `subject` (`<namespace>|<IdP subject>`). */
  idpTokensOf(subject: string): Promise<IdpTokenSet | undefined>;
  /** Codes and access tokens the gateway logged as issued so far. */
  issued(): { codes: number; tokens: number };
  /** Reloads the gateway with the config text `edit` makes and the files it names (relative to the stack's directory). */
  reload(edit: (text: string) => string, files?: Readonly<Record<string, string>>): Promise<void>;
  close(): Promise<void>;
}

export async function startIdpAsStack(options: IdpAsStackOptions): Promise<IdpAsStack> {
  const upstream = await startSampleUpstream({ responseMode: 'json', stateless: false, uriFixtures: false });
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-as-idp-'));
  try {
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    await writeFile(join(dir, 'idp-secret'), `${options.clientSecret}\n`);
    await writeFile(join(dir, 'idp-token-key'), IDP_TOKEN_KEY);
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    await writeFile(join(dir, 'as-keys.jwks'), JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: 'idp-stack-key' }] }));
    const configText = [
      'listen: { host: 127.0.0.1, port: 0 }',
      'store: { type: memory }',
      'authorizationServer:',
      '  signingKeys: { file: as-keys.jwks }',
      '  upstream:',
      ...options.upstream,
      '    clientSecretFile: idp-secret',
      '    tokenEncryptionKeyFile: idp-token-key',
      // The tests' metadata documents are served on loopback.
      '  registration: { allowPrivateNetworks: true }',
      options.grants,
      'routes:',
      '  - name: todo',
      '    path: /mcp',
      `    upstream: ${upstream.url}`,
      '    policy: todo.yaml',
    ].join('\n');
    const configFile = join(dir, 'gateway.yaml');
    const store = new MemoryStore();
    const { logger, logs } = captureLogs();
    const gateway = await startGateway(await parseConfig(configFile, configText), {
      logger,
      store,
      ...(options.metadataDocumentCa !== undefined ? { metadataDocumentCa: options.metadataDocumentCa } : {}),
    });
    const vault = new IdpTokenVault(store, IDP_TOKEN_KEY);
    return {
      gateway,
      issuer: gateway.url,
      mcpUrl: `${gateway.url}/mcp`,
      callbackUrl: `${gateway.url}/oauth/callback`,
      upstream,
      store,
      logs,
      idpTokensOf: (subject) => vault.read(subject),
      issued: () => ({ codes: logs.filter((l) => l.event === 'authorization').length, tokens: logs.filter((l) => l.event === 'token').length }),
      async reload(edit, files = {}) {
        for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
        gateway.reload(await parseConfig(configFile, edit(configText)));
      },
      async close() {
        await gateway.close();
        await upstream.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Which of `secrets` appear anywhere in `haystack` (JSON-encoded): none, for a leak check. */
export function leaked(haystack: unknown, secrets: readonly (string | undefined)[]): string[] {
  const text = JSON.stringify(haystack);
  return secrets.filter((secret): secret is string => secret !== undefined && secret.length >= 8 && text.includes(secret));
}
