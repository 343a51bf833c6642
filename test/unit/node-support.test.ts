import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The Node.js lines the gateway supports are the maintained LTS lines (22, 24, 26; Node 20 is
 * end of life). package.json's engines, the Docker image and CI must say the same, and CI must
 * run the tests on the oldest supported line and on the one the image ships.
 */
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const SUPPORTED = [22, 24, 26];

describe('supported Node.js lines', () => {
  it('engines names the oldest maintained LTS line', () => {
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toBe('>=22');
  });

  it('the Docker image ships a supported line', () => {
    const image = Number(/^ARG NODE_VERSION=(\d+)/m.exec(read('Dockerfile'))?.[1]);
    expect(SUPPORTED).toContain(image);
  });

  it('CI installs Node locally and runs the README commands on line 22 and on the image line', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/for line in 22 "\$image_node"; do/);
    expect(ci).toMatch(/npm install --prefix "\$prefix" .*"node@\$line"/);
    expect(ci).toMatch(/npm ci && npm run build && npm test/);
    expect(ci).not.toMatch(/npm install (-g|--global)/);
  });

  it('these tests run on a supported line', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });
});
