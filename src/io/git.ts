import type { GitFacts } from '../lib/context.ts';
import { capture } from './exec.ts';

async function git(cwd: string, args: string[]): Promise<string | undefined> {
  try {
    const res = await capture('git', args, { cwd });
    return res.code === 0 ? res.stdout.trim() : undefined;
  } catch {
    return undefined; // git not installed: every fact stays unknown
  }
}

/**
 * What the checkout in `cwd` knows. `sha` names the commit of interest when CI says which one it is
 * (a PR head may not be HEAD); its commit time is read when the object exists locally.
 */
export async function readGitFacts(cwd: string, sha?: string): Promise<GitFacts & { allTags: string[] }> {
  const head = await git(cwd, ['rev-parse', '--verify', '-q', 'HEAD']);
  const target = sha || head;
  const [branch, tags, commitTime, remoteUrl, allTags] = await Promise.all([
    git(cwd, ['symbolic-ref', '--short', '-q', 'HEAD']),
    git(cwd, ['tag', '--points-at', 'HEAD']),
    target ? git(cwd, ['log', '-1', '--format=%cI', target, '--']) : undefined,
    git(cwd, ['config', '--get', 'remote.origin.url']),
    git(cwd, ['tag', '--list']),
  ]);
  const facts: GitFacts & { allTags: string[] } = {
    allTags: allTags ? allTags.split('\n').filter(Boolean) : [],
  };
  if (head) facts.sha = head;
  if (branch) facts.branch = branch;
  if (tags) facts.tags = tags.split('\n').filter(Boolean);
  if (remoteUrl) facts.remoteUrl = remoteUrl;
  if (commitTime) facts.commitTime = commitTime;
  if (target) facts.commitTimeOf = target;
  return facts;
}
