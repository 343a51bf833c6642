import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { normalizeTyp, type ClaimMapping } from '../auth/claims.js';
import { unusableReason } from '../auth/key-set.js';
import { PRESETS, type PresetName, type RequiredClaimValue } from '../auth/presets.js';
import { durationOr } from './duration.js';
import type { ConfigProblem } from './problems.js';
import { ASYMMETRIC_ALGORITHMS, DEFAULTS, type AsymmetricAlgorithm, type IssuerConfig } from './types.js';
import type { YamlSource } from './yaml-source.js';

/** One `issuers[]` entry: as written, then with its key and secret files read and defaults applied. */
export interface IssuerDocument {
  issuer: string;
  preset?: PresetName;
  jwksUri?: string;
  jwks?: JSONWebKeySet;
  jwksFile?: string;
  audiences?: string[];
  algorithms?: AsymmetricAlgorithm[];
  clockTolerance?: string;
  typ?: string[];
  routes?: string[];
  claims?: Partial<ClaimMapping>;
  requireClaims?: Record<string, RequiredClaimValue>;
  dpop?: 'allowed' | 'required' | 'off';
  introspection?: {
    endpoint?: string;
    clientId: string;
    clientSecret?: string;
    clientSecretFile?: string;
    authMethod?: 'client_secret_basic' | 'client_secret_post';
    cacheTtl?: string;
    negativeCacheTtl?: string;
  };
}

export function buildIssuer(doc: IssuerDocument, jwks: JSONWebKeySet | undefined, secret: string | undefined): IssuerConfig {
  const preset = PRESETS[doc.preset ?? 'generic'];
  const claims = doc.claims ?? {};
  return {
    issuer: doc.issuer,
    preset: doc.preset ?? 'generic',
    algorithms: doc.algorithms ?? ASYMMETRIC_ALGORITHMS,
    clockToleranceSeconds: durationOr(doc.clockTolerance, DEFAULTS.clockToleranceSeconds * 1000) / 1000,
    typ: (doc.typ ?? preset.typ).map(normalizeTyp),
    dpop: doc.dpop ?? 'allowed',
    requireClaims: { ...preset.requireClaims, ...doc.requireClaims },
    claims: {
      scopes: claims.scopes ?? preset.claims.scopes,
      subject: claims.subject ?? preset.claims.subject,
      client: claims.client ?? preset.claims.client,
      ...((claims.scopePrefix ?? preset.claims.scopePrefix) !== undefined ? { scopePrefix: claims.scopePrefix ?? preset.claims.scopePrefix } : {}),
    },
    ...(doc.audiences ? { audiences: doc.audiences } : {}),
    ...(doc.routes ? { routes: doc.routes } : {}),
    ...(doc.jwksUri ? { jwksUri: doc.jwksUri } : {}),
    ...(jwks ? { jwks } : {}),
    ...(doc.introspection && secret !== undefined
      ? {
          introspection: {
            ...(doc.introspection.endpoint ? { endpoint: doc.introspection.endpoint } : {}),
            clientId: doc.introspection.clientId,
            clientSecret: secret,
            authMethod: doc.introspection.authMethod ?? 'client_secret_basic',
            cacheTtlMs: durationOr(doc.introspection.cacheTtl, DEFAULTS.introspectionCacheTtlMs),
            negativeCacheTtlMs: durationOr(doc.introspection.negativeCacheTtl, DEFAULTS.introspectionNegativeCacheTtlMs),
          },
        }
      : {}),
  };
}

/** Each introspecting issuer's client secret, inline or read from its file now. */
export async function loadIntrospectionSecrets(source: YamlSource, configFile: string, issuers: IssuerDocument[], problems: ConfigProblem[]): Promise<(string | undefined)[]> {
  return Promise.all(
    issuers.map(async (issuer, index) => {
      const introspection = issuer.introspection;
      if (!introspection) return undefined;
      const at = ['issuers', index, 'introspection'];
      if ((introspection.clientSecret === undefined) === (introspection.clientSecretFile === undefined)) {
        problems.push(source.problemAt(at, `issuers.${index}.introspection needs exactly one of clientSecret and clientSecretFile`));
        return undefined;
      }
      if (introspection.clientSecret !== undefined) return introspection.clientSecret;
      try {
        return (await readFile(resolve(dirname(configFile), introspection.clientSecretFile!), 'utf8')).replace(/\r?\n$/, '');
      } catch (error) {
        problems.push(source.problemAt([...at, 'clientSecretFile'], `cannot read issuers.${index}.introspection.clientSecretFile: ${(error as Error).message}`));
        return undefined;
      }
    }),
  );
}

/** Inline keys, or keys read from jwksFile now, so a missing or broken file is an error at its line. */
export async function loadIssuerKeys(source: YamlSource, configFile: string, issuers: IssuerDocument[], problems: ConfigProblem[]): Promise<(JSONWebKeySet | undefined)[]> {
  return Promise.all(
    issuers.map(async (issuer, index) => {
      if (issuer.jwks) return usableOrProblem(issuer.jwks, ['issuers', index, 'jwks']);
      if (issuer.jwksFile === undefined) return undefined;
      const at = ['issuers', index, 'jwksFile'];
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(resolve(dirname(configFile), issuer.jwksFile), 'utf8'));
      } catch (error) {
        problems.push(source.problemAt(at, `cannot read issuers.${index}.jwksFile '${issuer.jwksFile}': ${(error as Error).message}`));
        return undefined;
      }
      const keys = (parsed as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string')) {
        problems.push(source.problemAt(at, `issuers.${index}.jwksFile '${issuer.jwksFile}' is not a JWKS ({"keys": [...]} with a kty in every key)`));
        return undefined;
      }
      return usableOrProblem(parsed as JSONWebKeySet, at);
    }),
  );

  /** Keys given in the config must include one that can verify, or every token would get 503. */
  function usableOrProblem(jwks: JSONWebKeySet, at: (string | number)[]): JSONWebKeySet | undefined {
    const reasons = jwks.keys.map(unusableReason);
    const alarming = reasons.findIndex((reason) => reason?.alarming);
    if (alarming !== -1) {
      // Private or symmetric key material in a config is a leak to fix, not a key to skip.
      problems.push(source.problemAt(at, `${at.join('.')}: key ${alarming} ${reasons[alarming]!.reason}; give only public signature keys`));
      return undefined;
    }
    if (reasons.some((reason) => reason === undefined)) return jwks;
    const why = reasons.map((reason, i) => `key ${i} ${reason!.reason}`).join('; ');
    problems.push(source.problemAt(at, `${at.join('.')} holds no key that can verify tokens (${why})`));
    return undefined;
  }
}
