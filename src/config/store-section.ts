import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { durationOr } from './duration.js';
import type { ConfigProblem } from './problems.js';
import { DEFAULTS, type StoreConfig } from './types.js';
import { isUrl } from './urls.js';
import type { YamlSource } from './yaml-source.js';

/** The `store` section: as written, then checked, with its secret files read. */
export interface StoreDocument {
  type: 'memory' | 'redis';
  url?: string;
  nodes?: string[];
  keyPrefix?: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string; servername?: string };
  commandTimeout?: string;
  connectTimeout?: string;
}

const REDIS_ONLY_KEYS = ['url', 'nodes', 'keyPrefix', 'username', 'password', 'passwordFile', 'tls', 'commandTimeout', 'connectTimeout'] as const;

/**
 * The store section, checked for what the schema cannot say (url xor nodes, one password
 * source) and with its secret files read now, so a missing file is a config error at its line
 * rather than a failure at the first request.
 */
export async function loadStore(source: YamlSource, configFile: string, doc: StoreDocument | undefined, problems: ConfigProblem[]): Promise<StoreConfig | undefined> {
  if (doc === undefined || doc.type === 'memory') {
    for (const key of REDIS_ONLY_KEYS) {
      if (doc?.[key] !== undefined) problems.push(source.problemAt(['store', key], `store.${key} applies only to store type 'redis'`));
    }
    return { type: 'memory' };
  }
  const before = problems.length;
  const problem = (path: (string | number)[], message: string) => problems.push(source.problemAt(['store', ...path], message));
  if ((doc.url === undefined) === (doc.nodes === undefined)) problem(['type'], "store type 'redis' needs exactly one of url (one server) and nodes (a Cluster)");
  if (doc.url !== undefined && !isUrl(doc.url)) problem(['url'], `store.url '${doc.url}' is not a valid URL`);
  doc.nodes?.forEach((node, index) => {
    const { port } = parseHostPort(node);
    if (port < 1 || port > 65535) problem(['nodes', index], `store.nodes.${index} '${node}' needs a port from 1 to 65535`);
  });
  const urlHasPassword = doc.url !== undefined && isUrl(doc.url) && new URL(doc.url).password !== '';
  if ([doc.password !== undefined, doc.passwordFile !== undefined, urlHasPassword].filter(Boolean).length > 1) {
    problem([doc.passwordFile !== undefined ? 'passwordFile' : 'password'], 'give the Redis password once: in the url, password or passwordFile');
  }
  if (doc.username !== undefined && doc.url !== undefined && isUrl(doc.url) && new URL(doc.url).username !== '') {
    problem(['username'], 'give the Redis username once: in the url or username');
  }
  if (doc.tls !== undefined && doc.url !== undefined && !doc.url.startsWith('rediss://')) {
    problem(['tls'], 'store.tls needs a rediss:// url (redis:// is plain text)');
  }
  if ((doc.tls?.certFile === undefined) !== (doc.tls?.keyFile === undefined)) {
    problem(['tls', doc.tls?.certFile === undefined ? 'keyFile' : 'certFile'], 'store.tls.certFile and store.tls.keyFile go together');
  }
  const read = async (path: (string | number)[], name: string): Promise<string | undefined> => {
    try {
      return await readFile(resolve(dirname(configFile), name), 'utf8');
    } catch (error) {
      problem(path, `cannot read ${path.join('.')} '${name}': ${(error as Error).message}`);
      return undefined;
    }
  };
  const passwordText = doc.passwordFile === undefined ? undefined : await read(['passwordFile'], doc.passwordFile);
  const [ca, cert, key] = await Promise.all(
    (['caFile', 'certFile', 'keyFile'] as const).map((k) => (doc.tls?.[k] === undefined ? undefined : read(['tls', k], doc.tls[k]!))),
  );
  if (problems.length > before) return undefined;
  return {
    type: 'redis',
    url: doc.url,
    nodes: doc.nodes?.map(parseHostPort),
    keyPrefix: doc.keyPrefix ?? DEFAULTS.redisKeyPrefix,
    username: doc.username,
    password: doc.password ?? passwordText?.replace(/\r?\n$/, ''),
    tls: doc.tls === undefined ? undefined : { ca, cert, key, servername: doc.tls.servername },
    commandTimeoutMs: durationOr(doc.commandTimeout, DEFAULTS.redisCommandTimeoutMs),
    connectTimeoutMs: durationOr(doc.connectTimeout, DEFAULTS.redisConnectTimeoutMs),
  };
}

function parseHostPort(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) };
}
