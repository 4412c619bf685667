import { readFile } from 'node:fs/promises';
import { type BuildContext, completeContext, contextFromCi, type Env, type GitHubPayload } from '../lib/context.ts';
import { LadingError } from '../lib/errors.ts';
import { readGitFacts } from './git.ts';

export async function readEventPayload(path: string | undefined): Promise<GitHubPayload> {
  if (!path) return {};
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new LadingError(
      `cannot read the event payload at GITHUB_EVENT_PATH=${path}: ${(err as Error).message}`,
      'unset GITHUB_EVENT_PATH outside GitHub Actions',
    );
  }
  try {
    return JSON.parse(text) as GitHubPayload;
  } catch {
    throw new LadingError(`the event payload at ${path} is not JSON`);
  }
}

export interface ResolvedContext {
  context: BuildContext;
  /** Every tag in the repository (for semver "highest" decisions). */
  knownTags: string[];
}

/** CI environment + event payload + git → BuildContext. `overrides` (CLI flags) win over everything. */
export async function resolveBuildContext(
  env: Env,
  cwd: string,
  overrides: Partial<BuildContext> = {},
): Promise<ResolvedContext> {
  const payload = env.GITHUB_ACTIONS === 'true' ? await readEventPayload(env.GITHUB_EVENT_PATH) : {};
  const partial = { ...contextFromCi(env, payload), ...stripUndefined(overrides) };
  const git = await readGitFacts(cwd, partial.sha);
  return { context: completeContext(partial, git, env), knownTags: git.allTags };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
