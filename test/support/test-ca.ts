/**
 * A throwaway certificate authority and one server certificate for 127.0.0.1 and localhost, made
 * with the system's `openssl` at test time (as test/support/redis-servers.ts does for its TLS
 * Redis): EC P-256, valid one day, in a directory the caller owns and removes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TestCertificates {
  /** The CA certificate (PEM), what a client must trust. */
  readonly caFile: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = mcp-gateway-test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
`;

export async function createTestCertificates(dir: string, caName = 'mcp-gateway-test-ca'): Promise<TestCertificates> {
  // Our own config keeps the output independent of the system openssl.cnf defaults.
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, CONFIG);
  const file = (name: string): string => join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-config', config];
  await openssl('req', '-x509', ...newKey, '-extensions', 'ca', '-days', '1', '-sha256',
    '-subj', `/CN=${caName}`, '-keyout', file('ca.key'), '-out', file('ca.crt'));
  await openssl('req', '-new', ...newKey, '-subj', '/CN=localhost', '-keyout', file('server.key'), '-out', file('server.csr'));
  await openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '1', '-sha256',
    '-extfile', config, '-extensions', 'server', '-out', file('server.crt'));
  const [caPem, certPem, keyPem] = await Promise.all(['ca.crt', 'server.crt', 'server.key'].map((n) => readFile(file(n), 'utf8')));
  return { caFile: file('ca.crt'), caPem: caPem!, certPem: certPem!, keyPem: keyPem! };
}

async function openssl(...args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 10_000 });
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
