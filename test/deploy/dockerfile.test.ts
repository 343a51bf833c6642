import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface Instruction { keyword: string; args: string }
interface Stage { name: string | undefined; instructions: Instruction[] }

/** Dockerfile instructions by stage: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args };
    if (instruction.keyword === 'FROM') stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

/** What the image must be: multi-stage, non-root, read-only friendly, health-checked, labelled. */
function dockerfileProblems(text: string, packageVersion: string): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(text);
  if (stages.length < 2 || stages.some((s) => !s.name)) problems.push('multi-stage build with every stage named (FROM … AS name)');
  const runtime = stages.at(-1)?.instructions ?? [];
  const all = (keyword: string) => runtime.filter((i) => i.keyword === keyword).map((i) => i.args);
  const user = all('USER').at(-1);
  if (!user || !/^[1-9][0-9]*(:[0-9]+)?$/.test(user)) problems.push(`runtime USER must be a numeric non-root user (got ${user}), so runAsNonRoot can verify it`);
  const healthcheck = all('HEALTHCHECK').at(-1);
  if (!healthcheck || !/\bCMD\b.*HEALTHCHECK_URL/.test(healthcheck)) problems.push('HEALTHCHECK probing $HEALTHCHECK_URL');
  if (!all('ENV').some((env) => /\bHEALTHCHECK_URL=http:\/\/127\.0\.0\.1:8080\/healthz\b/.test(env))) problems.push('ENV HEALTHCHECK_URL defaulting to the main listener');
  if (all('STOPSIGNAL').at(-1) !== 'SIGTERM') problems.push('STOPSIGNAL SIGTERM');
  const labels = Object.fromEntries(all('LABEL').flatMap((l) => [...l.matchAll(/([\w.-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]])));
  for (const key of ['title', 'description', 'licenses', 'version']) {
    if (!labels[`org.opencontainers.image.${key}`]) problems.push(`LABEL org.opencontainers.image.${key}`);
  }
  const version = all('ARG').find((arg) => arg.startsWith('VERSION='));
  if (version !== `VERSION=${packageVersion}`) problems.push(`ARG VERSION=${packageVersion} (package.json's version), got ${version}`);
  for (const run of all('RUN')) {
    if (/\bnpm (install|i)\b/.test(run)) problems.push(`runtime stage runs npm install: ${run}`);
    if (/\bnpm ci\b/.test(run) && !/--omit=dev\b/.test(run)) problems.push(`runtime npm ci without --omit=dev: ${run}`);
  }
  const names = stages.map((s) => s.name);
  for (const copy of all('COPY')) {
    const from = /--from=(\S+)/.exec(copy)?.[1];
    if (from && !names.slice(0, -1).includes(from)) problems.push(`COPY --from=${from}: no earlier stage of that name`);
  }
  if (all('ENTRYPOINT').at(-1) !== '["node", "/app/dist/src/bin.js"]') problems.push('ENTRYPOINT ["node", "/app/dist/src/bin.js"]');
  return problems;
}

describe('Dockerfile', () => {
  const text = readFileSync('Dockerfile', 'utf8');
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

  it('is multi-stage, non-root, health-checked, labelled, stops on SIGTERM, with production dependencies only', () => {
    expect(dockerfileProblems(text, version)).toEqual([]);
  });

  it('the check catches a Dockerfile that falls short', () => {
    const broken = text
      .replace('USER 1000:1000', 'USER root')
      .replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, '')
      .replace('npm ci --omit=dev --ignore-scripts', 'npm install');
    expect(dockerfileProblems(broken, version)).toEqual([
      'runtime USER must be a numeric non-root user (got root), so runAsNonRoot can verify it',
      'HEALTHCHECK probing $HEALTHCHECK_URL',
      'runtime stage runs npm install: npm install && npm cache clean --force',
    ]);
    expect(dockerfileProblems(text.replace(' AS build', ''), version)).toContain('multi-stage build with every stage named (FROM … AS name)');
  });

  it('its build context (.dockerignore) leaves out what the image must not see, and keeps what it copies', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist']));
    const copied = parseDockerfile(text)
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'src', 'schemas']));
    for (const path of copied) expect(ignored, path).not.toContain(path);
  });
});
