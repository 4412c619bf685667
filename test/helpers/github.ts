import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { completeContext, type Env, fromGitHub, type GitHubPayload } from '../../src/lib/context.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
export const eventPath = (name: string) => join(FIXTURES, 'events', `${name}.json`);
export const loadEvent = (name: string) => JSON.parse(readFileSync(eventPath(name), 'utf8')) as GitHubPayload;

/** The env a GitHub runner sets for an event of the acme/shop fixtures. */
export function githubEnv(eventName: string, ref: string, sha: string, extra: Env = {}): Record<string, string> {
  return Object.fromEntries(
    Object.entries({
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: eventName,
      GITHUB_REF: ref,
      GITHUB_SHA: sha,
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_RUN_ID: '1234567',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_ACTOR: 'ada',
      ...extra,
    }).filter((e): e is [string, string] => e[1] !== undefined),
  );
}

/** A BuildContext as the tags stage would resolve it on a runner with no git checkout. */
export function ghContext(fixture: string, env: Env) {
  return completeContext(fromGitHub(env, loadEvent(fixture)), {});
}

/** Parses a GITHUB_OUTPUT file (name<<delimiter … delimiter blocks, or name=value lines). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]!);
      out[name!] = value.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}
