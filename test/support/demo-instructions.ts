import { expect } from 'vitest';
import { shellWords } from './shell-words.js';

/**
 * What the demos print (dev/demo-stack.ts, dev/demo-facade.ts), read as a person pasting it would:
 * the tests run every command as printed (test/dev/demo*.test.ts).
 */
export const INSPECTOR = ['npx', '@modelcontextprotocol/inspector'];

export interface Printed {
  /** NAME=value lines, as a shell that ran them would hold them. */
  env: Record<string, string>;
  /** Every command line, split into words, with the sentence printed just before it. */
  commands: { words: string[]; said: string }[];
}

export function parseInstructions(text: string): Printed {
  const env: Record<string, string> = {};
  const commands: Printed['commands'] = [];
  let said = '';
  for (const line of text.split('\n')) {
    const assignment = /^ {2}([A-Z_]+)=(\S+)$/.exec(line);
    const command = /^ {2}(?:[a-zA-Z ]+: +)?((?:npx|curl) .*)$/.exec(line);
    if (assignment) env[assignment[1]!] = assignment[2]!;
    else if (command) commands.push({ words: shellWords(command[1]!, env), said });
    else if (line.trim() !== '' && !line.startsWith('   ')) said = line;
  }
  return { env, commands };
}

/** The Inspector's options, as its launcher and CLI read them (`--cli` first, then the rest). */
export interface InspectorRun {
  cli: boolean;
  url: string;
  transport?: string;
  headers: Record<string, string>;
  method?: string;
  toolName?: string;
}

export function inspectorRun(words: string[]): InspectorRun {
  expect(words.slice(0, 2)).toEqual(INSPECTOR);
  const run: InspectorRun = { cli: words[2] === '--cli', url: '', headers: {} };
  const rest = words.slice(run.cli ? 3 : 2);
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (!word.startsWith('--')) {
      run.url = word;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) throw new Error(`${word} without a value`);
    if (word === '--server-url') run.url = value;
    else if (word === '--transport') run.transport = value;
    else if (word === '--method') run.method = value;
    else if (word === '--tool-name') run.toolName = value;
    else if (word === '--header') {
      const colon = value.indexOf(':');
      run.headers[value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
    } else throw new Error(`an Inspector option this test does not know: ${word}`);
  }
  return run;
}

/** curl -s / -si URL -H 'name: value' … -d BODY, as fetch. */
export async function runCurl(words: string[]): Promise<Response> {
  let url = '';
  let body: string | undefined;
  const headers = new Headers();
  for (let i = 1; i < words.length; i++) {
    const word = words[i]!;
    if (word === '-si' || word === '-s') continue;
    if (word === '-H') {
      const header = words[++i]!;
      const colon = header.indexOf(':');
      headers.append(header.slice(0, colon).trim(), header.slice(colon + 1).trim());
    } else if (word === '-d') body = words[++i];
    else if (word.startsWith('-')) throw new Error(`a curl option this test does not know: ${word}`);
    else url = word;
  }
  // curl -d posts, as application/x-www-form-urlencoded unless a content-type is given.
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded');
  return fetch(url, { method: body === undefined ? 'GET' : 'POST', headers, ...(body === undefined ? {} : { body }) });
}
