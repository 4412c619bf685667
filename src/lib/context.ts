import { LadingError } from './errors.ts';

/**
 * Everything about "what is being built" that later stages need, derived once from the CI environment
 * (GitHub event payload, GitLab/Bitbucket/Jenkins variables) and plain git. Pure: callers hand in env and facts.
 */
export type Provider = 'github' | 'gitlab' | 'bitbucket' | 'jenkins' | 'git';

export interface BuildContext {
  provider: Provider;
  /** The triggering event, normalised to GitHub's names: push, pull_request, pull_request_target, schedule, workflow_dispatch, … */
  event: string;
  /** owner/name, or '' when it cannot be known. */
  repository: string;
  /** Web URL of the repository, without credentials; '' when unknown. */
  repositoryUrl: string;
  /** The git ref that was built: refs/heads/x, refs/tags/y, refs/pull/N/head. */
  ref: string;
  /** The branch built; for pull requests the PR's head branch. */
  branch?: string;
  /** The tag built, on tag pushes (and for the CLI when HEAD is tagged). */
  tag?: string;
  /** The commit built (40 hex); for pull requests the PR head commit, never the merge commit. */
  sha: string;
  pr?: number;
  /** Commit time, ISO 8601, when known. */
  commitTime?: string;
  /** Link to the CI run that built this, when known. */
  runUrl?: string;
  /** Run identifier (GitHub run id + attempt, GitLab pipeline id, …), for lock owners and history. */
  runId?: string;
  actor?: string;
  /** The repository's default branch, when the event payload tells it (for `{{is_default_branch}}`). */
  defaultBranch?: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Facts read from a git checkout (see src/io/git.ts); every field optional, since CI checkouts vary. */
export interface GitFacts {
  sha?: string;
  branch?: string;
  tags?: string[];
  commitTime?: string;
  /** The commit `commitTime` belongs to, when it is not HEAD. */
  commitTimeOf?: string;
  remoteUrl?: string;
}

const SHA_RE = /^[0-9a-f]{40}$/;

export function detectProvider(env: Env): Provider {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (env.GITLAB_CI === 'true') return 'gitlab';
  if (env.BITBUCKET_BUILD_NUMBER || env.BITBUCKET_COMMIT) return 'bitbucket';
  if (env.JENKINS_URL || env.JENKINS_HOME) return 'jenkins';
  return 'git';
}

/** refs/heads/x → {branch: x}; refs/tags/y → {tag: y}; refs/pull/N/… → {pr: N}. */
export function parseRef(ref: string): { branch?: string; tag?: string; pr?: number } {
  if (ref.startsWith('refs/heads/')) return { branch: ref.slice('refs/heads/'.length) };
  if (ref.startsWith('refs/tags/')) return { tag: ref.slice('refs/tags/'.length) };
  const pr = /^refs\/pull\/(\d+)\//.exec(ref);
  if (pr?.[1]) return { pr: Number(pr[1]) };
  return {};
}

/**
 * A clone URL in any common form → its web URL, with credentials removed.
 * git@host:o/r.git, ssh://git@host:22/o/r.git, https://user:token@host/o/r.git → https://host/o/r
 */
export function webUrlFromRemote(remote: string | undefined): string {
  if (!remote) return '';
  const trimmed = remote.trim();
  const scp = /^[\w.-]+@([\w.-]+):(?!\/)(.+?)(?:\.git)?\/?$/.exec(trimmed);
  if (scp) return `https://${scp[1]}/${scp[2]}`;
  try {
    const url = new URL(trimmed);
    if (!['http:', 'https:', 'ssh:', 'git:'].includes(url.protocol)) return '';
    const path = url.pathname.replace(/\.git\/?$/, '').replace(/\/$/, '');
    const scheme = url.protocol === 'http:' ? 'http' : 'https';
    return `${scheme}://${url.hostname}${path}`;
  } catch {
    return '';
  }
}

/** https://host/o/r → o/r (the path of a web URL); '' when there is none. */
export function repositoryFromUrl(url: string): string {
  if (!url) return '';
  try {
    return new URL(url).pathname.replace(/^\//, '');
  } catch {
    return '';
  }
}

function positiveInt(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A minimal view of the GitHub event payload: only what lading reads from it. */
export interface GitHubPayload {
  number?: number;
  pull_request?: { number?: number; head?: { sha?: string; ref?: string }; base?: { ref?: string } };
  head_commit?: { timestamp?: string; id?: string } | null;
  after?: string;
  repository?: { full_name?: string; html_url?: string; default_branch?: string };
  sender?: { login?: string };
}

export function fromGitHub(env: Env, payload: GitHubPayload): Partial<BuildContext> {
  const event = env.GITHUB_EVENT_NAME || 'push';
  const ref = env.GITHUB_REF || '';
  const parsed = parseRef(ref);
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/$/, '');
  const repository = env.GITHUB_REPOSITORY || payload.repository?.full_name || '';
  const ctx: Partial<BuildContext> = {
    provider: 'github',
    event,
    repository,
    repositoryUrl: repository ? `${server}/${repository}` : '',
    ref,
    sha: env.GITHUB_SHA,
    branch: parsed.branch,
    tag: parsed.tag,
    actor: env.GITHUB_ACTOR || payload.sender?.login,
  };
  if (payload.repository?.default_branch) ctx.defaultBranch = payload.repository.default_branch;
  if (env.GITHUB_RUN_ID && repository) {
    const attempt = Number(env.GITHUB_RUN_ATTEMPT || '1');
    ctx.runUrl = `${server}/${repository}/actions/runs/${env.GITHUB_RUN_ID}${attempt > 1 ? `/attempts/${attempt}` : ''}`;
    ctx.runId = `${env.GITHUB_RUN_ID}.${attempt}`;
  }
  const pr = payload.pull_request;
  if (pr && (event === 'pull_request' || event === 'pull_request_target' || event.startsWith('pull_request'))) {
    // Build what the PR author pushed: the head commit and branch, not the synthetic merge commit or the base.
    ctx.sha = pr.head?.sha || ctx.sha;
    ctx.branch = pr.head?.ref || env.GITHUB_HEAD_REF || undefined;
    ctx.tag = undefined;
    ctx.pr = positiveInt(payload.number) ?? positiveInt(pr.number) ?? parsed.pr;
    if (ctx.pr) ctx.ref = `refs/pull/${ctx.pr}/head`;
  }
  if (event === 'push' && payload.head_commit?.timestamp && payload.head_commit.id === ctx.sha) {
    ctx.commitTime = payload.head_commit.timestamp;
  }
  return ctx;
}

export function fromGitLab(env: Env): Partial<BuildContext> {
  const source = env.CI_PIPELINE_SOURCE || 'push';
  const event =
    source === 'merge_request_event'
      ? 'pull_request'
      : source === 'schedule'
        ? 'schedule'
        : ['web', 'api', 'trigger', 'pipeline', 'chat'].includes(source)
          ? 'workflow_dispatch'
          : 'push';
  const pr = positiveInt(env.CI_MERGE_REQUEST_IID);
  const tag = env.CI_COMMIT_TAG || undefined;
  const branch = pr
    ? env.CI_MERGE_REQUEST_SOURCE_BRANCH_NAME
    : tag
      ? undefined
      : env.CI_COMMIT_BRANCH || env.CI_COMMIT_REF_NAME || undefined;
  return {
    provider: 'gitlab',
    event,
    repository: env.CI_PROJECT_PATH || '',
    repositoryUrl: env.CI_PROJECT_URL || '',
    // Merged-results pipelines run on a merge commit; the source branch's head is what was pushed.
    sha: (pr && env.CI_MERGE_REQUEST_SOURCE_BRANCH_SHA) || env.CI_COMMIT_SHA,
    branch,
    tag,
    pr,
    ref: pr ? `refs/merge-requests/${pr}/head` : tag ? `refs/tags/${tag}` : branch ? `refs/heads/${branch}` : '',
    commitTime: env.CI_COMMIT_TIMESTAMP || undefined,
    runUrl: env.CI_PIPELINE_URL || env.CI_JOB_URL || undefined,
    runId: env.CI_PIPELINE_ID,
    actor: env.GITLAB_USER_LOGIN,
  };
}

export function fromBitbucket(env: Env): Partial<BuildContext> {
  const origin = (env.BITBUCKET_GIT_HTTP_ORIGIN || '').replace(/^http:/, 'https:');
  const pr = positiveInt(env.BITBUCKET_PR_ID);
  const tag = env.BITBUCKET_TAG || undefined;
  const branch = env.BITBUCKET_BRANCH || undefined;
  return {
    provider: 'bitbucket',
    event: pr ? 'pull_request' : 'push',
    repository: env.BITBUCKET_REPO_FULL_NAME || repositoryFromUrl(origin),
    repositoryUrl: origin,
    sha: env.BITBUCKET_COMMIT,
    branch,
    tag,
    pr,
    ref: pr ? `refs/pull/${pr}/head` : tag ? `refs/tags/${tag}` : branch ? `refs/heads/${branch}` : '',
    runUrl:
      origin && env.BITBUCKET_BUILD_NUMBER
        ? `${origin}/addon/pipelines/home#!/results/${env.BITBUCKET_BUILD_NUMBER}`
        : undefined,
    runId: env.BITBUCKET_BUILD_NUMBER,
  };
}

export function fromJenkins(env: Env): Partial<BuildContext> {
  const pr = positiveInt(env.CHANGE_ID);
  const tag = env.TAG_NAME || undefined;
  // Multibranch pipelines give BRANCH_NAME (PR-12 for pull requests, CHANGE_BRANCH holds the source branch);
  // freestyle jobs give GIT_BRANCH as origin/main.
  const branch = pr
    ? env.CHANGE_BRANCH
    : tag
      ? undefined
      : env.BRANCH_NAME ||
        env.GIT_BRANCH?.replace(/^(?:refs\/heads\/|origin\/|refs\/remotes\/origin\/)/, '') ||
        undefined;
  const repositoryUrl = webUrlFromRemote(env.GIT_URL);
  return {
    provider: 'jenkins',
    event: pr ? 'pull_request' : 'push',
    repository: repositoryFromUrl(repositoryUrl),
    repositoryUrl,
    sha: env.GIT_COMMIT,
    branch,
    tag,
    pr,
    ref: pr ? `refs/pull/${pr}/head` : tag ? `refs/tags/${tag}` : branch ? `refs/heads/${branch}` : '',
    runUrl: env.BUILD_URL || undefined,
    runId: env.BUILD_TAG || env.BUILD_NUMBER,
  };
}

/**
 * Completes what the CI environment said with what git knows, and checks the result.
 * CI variables win over git (a CI checkout is often a detached HEAD); git fills the gaps.
 */
export function completeContext(partial: Partial<BuildContext>, git: GitFacts, env: Env = {}): BuildContext {
  const sha = (partial.sha || git.sha || '').toLowerCase();
  if (!SHA_RE.test(sha)) {
    throw new LadingError(
      sha ? `the commit '${sha}' is not a full 40-character sha` : 'cannot tell which commit is being built',
      'run inside a git checkout, or set GITHUB_SHA (or the CI system’s commit variable)',
    );
  }
  let { branch, tag } = partial;
  const fromCi = partial.provider && partial.provider !== 'git';
  // git knows the branch only when HEAD is on one, and its tags only for the commit it has checked out.
  const gitIsHead = git.sha === undefined || git.sha.toLowerCase() === sha;
  if (!fromCi && gitIsHead) {
    branch ??= git.branch;
    tag ??= pickTag(git.tags ?? []);
  }
  const repositoryUrl = partial.repositoryUrl || webUrlFromRemote(git.remoteUrl);
  const ref = partial.ref || (branch ? `refs/heads/${branch}` : tag ? `refs/tags/${tag}` : '');
  const ctx: BuildContext = {
    provider: partial.provider ?? 'git',
    event: partial.event ?? 'push',
    repository: partial.repository || repositoryFromUrl(repositoryUrl),
    repositoryUrl,
    ref,
    sha,
  };
  if (branch) ctx.branch = branch;
  if (tag) ctx.tag = tag;
  if (partial.pr) ctx.pr = partial.pr;
  if (partial.defaultBranch) ctx.defaultBranch = partial.defaultBranch;
  const timeOf = (git.commitTimeOf ?? git.sha)?.toLowerCase();
  const commitTime = partial.commitTime || (timeOf === undefined || timeOf === sha ? git.commitTime : undefined);
  if (commitTime) ctx.commitTime = normaliseTime(commitTime);
  if (partial.runUrl) ctx.runUrl = partial.runUrl;
  if (partial.runId) ctx.runId = partial.runId;
  const actor = partial.actor || env.USER;
  if (actor) ctx.actor = actor;
  return ctx;
}

/** Of several tags on one commit, prefer the highest semver-looking one, else the first by name. */
function pickTag(tags: string[]): string | undefined {
  if (tags.length === 0) return undefined;
  const semverish = tags.filter((t) => /^v?\d+\.\d+\.\d+/.test(t));
  const pool = semverish.length > 0 ? semverish : tags;
  return [...pool].sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))[0];
}

function normaliseTime(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new LadingError(`the commit time '${value}' is not a date`);
  return new Date(ms).toISOString();
}

/** Picks the provider's reader; for github the caller passes the parsed event payload. */
export function contextFromCi(env: Env, payload: GitHubPayload = {}): Partial<BuildContext> {
  switch (detectProvider(env)) {
    case 'github':
      return fromGitHub(env, payload);
    case 'gitlab':
      return fromGitLab(env);
    case 'bitbucket':
      return fromBitbucket(env);
    case 'jenkins':
      return fromJenkins(env);
    default:
      return { provider: 'git' };
  }
}
