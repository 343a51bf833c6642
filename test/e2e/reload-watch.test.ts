import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { watchConfig } from '../../src/config/watch.js';
import { decideToolCall } from '../../src/policy/evaluate.js';
import { minimalConfig } from '../support/config-fixtures.js';
import { captureLogs } from '../support/log-capture.js';
import { sleep, waitFor } from '../support/timing.js';

/**
 * The config watcher in process (the spawned-gateway cases are in reload.test.ts): a config and
 * a policy reached through symlinks into other directories are followed to their targets, and
 * what is watched is read from the kernel itself (Linux: the inotify watches in
 * /proc/self/fdinfo), so a watch that leaks past close() or past a re-pointed link is seen.
 */
const ALLOW = 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n';
const DENY = 'scopes: [todo:read]\ntools:\n  list_todos: deny\n';

/** Inode numbers of every directory or file this process holds an inotify watch on. */
function watchedInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    for (const match of info.matchAll(/^inotify wd:\d+ ino:([0-9a-f]+) /gm)) inodes.add(Number.parseInt(match[1]!, 16));
  }
  return inodes;
}
const inodeOf = async (path: string) => (await stat(path)).ino;
/** What the config's one policy decides for list_todos with todo:read. */
const listTodos = (config: GatewayConfig) => decideToolCall(config.routes[0]!.policy, new Set(['todo:read']), 'list_todos').effect;

describe.runIf(process.platform === 'linux')('config watcher and symlinks', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcp-gw-watch-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('follows a symlinked config and a policy reached through a chain of links, re-resolves a re-pointed link, and leaves no watch after close', async () => {
    const configDir = join(root, 'etc');
    const configTarget = join(root, 'config-repo');
    const hop = join(root, 'links');
    const checkout = join(root, 'checkout');
    const moved = join(root, 'moved');
    for (const dir of [configDir, configTarget, hop, checkout, moved]) await mkdir(dir);
    await writeFile(join(configTarget, 'gateway.yaml'), minimalConfig({ policy: 'todo.yaml' }));
    await writeFile(join(checkout, 'todo.yaml'), DENY);
    await writeFile(join(moved, 'todo.yaml'), DENY);
    await symlink(join(configTarget, 'gateway.yaml'), join(configDir, 'gateway.yaml'));
    // etc/todo.yaml -> links/todo.yaml -> checkout/todo.yaml
    await symlink(join(hop, 'todo.yaml'), join(configDir, 'todo.yaml'));
    await symlink(join(checkout, 'todo.yaml'), join(hop, 'todo.yaml'));

    const file = join(configDir, 'gateway.yaml');
    const initial = await loadConfig(file);
    const applied: GatewayConfig[] = [];
    const { logger, logs } = captureLogs();
    const before = watchedInodes();
    const watcher = await watchConfig(file, initial, (config) => applied.push(config), logger, {});
    try {
      const watched = watchedInodes();
      for (const dir of [configDir, configTarget, hop, checkout]) expect(watched.has(await inodeOf(dir)), dir).toBe(true);
      expect(watched.has(await inodeOf(moved))).toBe(false);

      // The config's target edited in place.
      await writeFile(join(configTarget, 'gateway.yaml'), `allowedOrigins: [https://app.example.test]\n${minimalConfig({ policy: 'todo.yaml' })}`);
      await waitFor('the edited config', async () => applied.length === 1, 3_000);
      expect(applied[0]!.allowedOrigins).toEqual(['https://app.example.test']);

      // The policy's final target edited in place.
      await writeFile(join(checkout, 'todo.yaml'), ALLOW);
      await waitFor('the edited policy', async () => applied.length === 2, 3_000);
      expect([listTodos(applied[0]!), listTodos(applied[1]!)]).toEqual(['deny', 'allow']);

      // The middle link re-pointed: the new target is watched from now on, the old one no more.
      await symlink(join(moved, 'todo.yaml'), join(hop, 'todo.yaml.tmp'));
      await rename(join(hop, 'todo.yaml.tmp'), join(hop, 'todo.yaml'));
      await waitFor('the re-pointed link', async () => applied.length === 3, 3_000);
      expect(listTodos(applied[2]!)).toBe('deny');
      await waitFor('the new target watched', async () => watchedInodes().has(await inodeOf(moved)), 3_000);
      expect(watchedInodes().has(await inodeOf(checkout))).toBe(false);
      await writeFile(join(checkout, 'todo.yaml'), DENY); // the old target: nothing to do
      await sleep(500);
      expect(applied).toHaveLength(3);
      await writeFile(join(moved, 'todo.yaml'), ALLOW);
      await waitFor('the edited new target', async () => applied.length === 4, 3_000);
      expect(listTodos(applied[3]!)).toBe('allow');
      expect(logs.filter((entry) => entry.event === 'reload' && entry.msg !== 'config reloaded')).toEqual([]);
    } finally {
      watcher.close();
    }
    // Every watch this watcher made is gone, and nothing more changes anything.
    const after = watchedInodes();
    for (const dir of [configDir, configTarget, hop, checkout, moved]) expect(after.has(await inodeOf(dir)), dir).toBe(before.has(await inodeOf(dir)));
    await writeFile(join(moved, 'todo.yaml'), DENY);
    await sleep(500);
    expect(applied).toHaveLength(4);
  });
});
