import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/problems.js';
import { UPSTREAM_PRESET_DEFAULTS } from '../../src/config/upstream-presets.js';

/**
 * The IdP guides (docs/idp/) are copied into production configs, so every ```yaml block in them
 * must load with the real config loader: schema, cross-key rules and files. Placeholders such as
 * `<tenant id>` become dummy values, and the files a block names (signing keys, client secret,
 * token key, policy) are written beside it; the signing keys come from the command the index
 * documents, so that command is checked too.
 */
const DOCS = new URL('../../docs/idp/', import.meta.url).pathname;
const POLICY = new URL('../../policies/todo.yaml', import.meta.url).pathname;
const PRESETS = Object.keys(UPSTREAM_PRESET_DEFAULTS).filter((preset) => preset !== 'generic');

interface Block {
  readonly guide: string;
  readonly index: number;
  readonly text: string;
}

/** `<tenant id>` -> `tenant-id`: a value every placeholder's position accepts (a URL's host or path, an id). */
function fillPlaceholders(text: string): string {
  return text.replace(/<([^<>\n]+)>/g, (_, name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''));
}

function yamlBlocks(guide: string, markdown: string): Block[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((match, index) => ({ guide, index, text: match[1]! }));
}

/** The JWKS command from the index, run as written (its `node -e` script). */
function documentedSigningKeys(index: string): string {
  const script = /node -e '([^']+)' > as-keys\.jwks/.exec(index)?.[1];
  if (script === undefined) throw new Error('docs/idp/README.md no longer shows the `node -e ... > as-keys.jwks` command');
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
}

describe('docs/idp guides', () => {
  let root: string;
  let guides: Map<string, string>;
  let signingKeys: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcp-gw-idp-guides-'));
    const names = (await readdir(DOCS)).filter((name) => name.endsWith('.md'));
    guides = new Map(await Promise.all(names.map(async (name) => [name, await readFile(join(DOCS, name), 'utf8')] as const)));
    signingKeys = documentedSigningKeys(guides.get('README.md') ?? '');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Loads a block as `gateway.yaml` in a directory of its own, with every file it names. */
  async function load(block: Block) {
    const dir = await mkdtemp(join(root, `${block.guide}-${block.index}-`));
    const text = fillPlaceholders(block.text);
    const doc = parse(text) as {
      authorizationServer?: { signingKeys?: { file?: string }; upstream?: { clientSecretFile?: string; tokenEncryptionKeyFile?: string } };
      routes?: { policy?: string }[];
    };
    const files: [string | undefined, string][] = [
      [doc.authorizationServer?.signingKeys?.file, signingKeys],
      [doc.authorizationServer?.upstream?.clientSecretFile, 'a-client-secret\n'],
      [doc.authorizationServer?.upstream?.tokenEncryptionKeyFile, `${randomBytes(32).toString('base64url')}\n`],
      ...(doc.routes ?? []).map((route) => [route.policy, '__policy__'] as [string | undefined, string]),
    ];
    for (const [name, content] of files) {
      if (name === undefined) continue;
      // Paths in the guides are relative to the config file, as the README recommends for mounted files.
      expect(name.startsWith('/'), `${block.guide} block ${block.index}: '${name}' should be relative to the config file`).toBe(false);
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content === '__policy__' ? await readFile(POLICY, 'utf8') : content);
    }
    return parseConfig(join(dir, 'gateway.yaml'), text);
  }

  it('has a guide per preset, each linked from the index', () => {
    const index = guides.get('README.md')!;
    for (const preset of PRESETS) {
      expect(guides.has(`${preset}.md`), `docs/idp/${preset}.md`).toBe(true);
      expect(index).toContain(`](${preset}.md)`);
    }
  });

  it('every guide names the redirect URI, a config block and its sources', () => {
    for (const preset of PRESETS) {
      const guide = guides.get(`${preset}.md`)!;
      expect(guide).toContain('/oauth/callback');
      expect(yamlBlocks(preset, guide).length, `${preset}.md has a yaml block`).toBeGreaterThan(0);
      // The vendor pages the guide relies on: one paragraph starting `Sources:`, with their addresses.
      expect(/^Sources: (?:.+\n)*/m.exec(guide)?.[0], `${preset}.md cites its sources`).toMatch(/https:\/\//);
    }
  });

  it('every yaml block loads with the config loader, with its guide\'s preset', async () => {
    const blocks = [...guides].flatMap(([name, markdown]) => yamlBlocks(name.replace(/\.md$/, ''), markdown));
    expect(blocks.length).toBeGreaterThanOrEqual(PRESETS.length + 1);
    for (const block of blocks) {
      const config = await load(block).catch((error: unknown) => {
        throw new Error(`docs/idp/${block.guide}.md yaml block ${block.index} does not load:\n${(error as Error).message}`);
      });
      const preset = config.authorizationServer?.upstream.preset;
      expect(preset, `docs/idp/${block.guide}.md block ${block.index}`).toBe(PRESETS.includes(block.guide) ? block.guide : preset);
      expect(config.authorizationServer?.signingKeys?.length, `${block.guide} block ${block.index} shares signing keys`).toBeGreaterThan(0);
    }
  });

  it('a block with a misspelt key is refused (the check above would catch a guide drifting from the schema)', async () => {
    const entra = yamlBlocks('entra', guides.get('entra.md')!)[0]!;
    expect(entra.text).toContain('clientSecretFile:');
    await expect(load(entra)).resolves.toBeDefined();
    const misspelt = { ...entra, index: 99, text: entra.text.replace('clientSecretFile:', 'clientSecretFil:') };
    await expect(load(misspelt)).rejects.toThrow(ConfigError);
  });
});
